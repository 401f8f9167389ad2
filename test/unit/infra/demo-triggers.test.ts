import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureDemoCaller } from "../../../infra/demo-caller.ts";
import {
  DEMO_SECRET_ENV,
  DEMO_TRIGGER,
  demoTriggerFile,
  ensureDemoTriggers,
  randomSecret,
} from "../../../infra/demo-triggers.ts";
import { loadTriggers } from "../../../lib/gateway/triggers.ts";
import { KeyRegistry } from "../../../lib/security/http/mod.ts";
import { evaluateTrigger, type Trigger } from "../../../lib/triggers/mod.ts";
import { parseTriggerFile } from "../../../lib/triggers/node.ts";

const SHA = "0123456789abcdef0123456789abcdef01234567";

function demoTrigger(): Trigger {
  const parsed = parseTriggerFile(demoTriggerFile("dc1", "mcollective"), { filename: "triggers.yaml" });
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.triggers.get(DEMO_TRIGGER)!;
}

function push(overrides: Record<string, unknown> = {}, event = "push") {
  return {
    payload: { ref: "refs/heads/main", after: SHA, repository: { full_name: "acme/demo" }, ...overrides },
    headers: new Headers({ "x-github-event": event }),
  };
}

const noData = async () => undefined;

describe("the demo trigger file", () => {
  it("turns a push to main into demo#echo on the web nodes of the demo cluster, under the deploy lock", async () => {
    const trigger = demoTrigger();
    expect(trigger.verify).toMatchObject({ scheme: "github", secretsEnv: [DEMO_SECRET_ENV] });
    const outcome = await evaluateTrigger(trigger, push(), noData);
    expect(outcome).toEqual({
      kind: "run",
      body: {
        cluster: "dc1",
        collective: "mcollective",
        agent: "demo",
        action: "echo",
        data: { sha: SHA, repo: "acme/demo" },
        filter: { fact: [{ fact: "role", operator: "==", value: "web" }] },
        timeout: 10,
      },
      inputs: { sha: SHA, repo: "acme/demo" },
      locks: ["deploy"],
      onComplete: [{ op: "put", key: "deploy/last-sha", value: SHA, whenState: ["complete"] }],
    });
    expect(trigger.policy).toMatchObject({ clusters: ["dc1"], actions: ["demo#echo"], requireFilter: true });
  });

  it("names the cluster and collective it is made for", async () => {
    const parsed = parseTriggerFile(demoTriggerFile("east", "europe"));
    if (!parsed.ok) throw new Error(parsed.message);
    const outcome = await evaluateTrigger(parsed.triggers.get(DEMO_TRIGGER)!, push(), noData);
    expect(outcome.kind === "run" && outcome.body).toMatchObject({ cluster: "east", collective: "europe" });
  });

  it("skips other events, other branches and branch deletions", async () => {
    const trigger = demoTrigger();
    for (const delivery of [
      push({}, "ping"),
      push({ ref: "refs/heads/dev" }),
      push({ deleted: true, after: "0".repeat(40) }),
    ])
      expect((await evaluateTrigger(trigger, delivery, noData)).kind).toBe("skip");
  });

  it("refuses a sha that is not 40 hex digits and a repository name with shell syntax", async () => {
    const trigger = demoTrigger();
    const badSha = await evaluateTrigger(trigger, push({ after: "HEAD" }), noData);
    expect(badSha.kind === "invalid" && badSha.errors.map((e) => e.field)).toEqual(["inputs.sha"]);
    const badRepo = await evaluateTrigger(
      trigger,
      push({ repository: { full_name: "a/b;rm -rf ~" } }),
      noData,
    );
    expect(badRepo.kind === "invalid" && badRepo.errors.map((e) => e.field)).toEqual(["inputs.repo"]);
  });
});

describe("randomSecret", () => {
  it("is 32 random bytes in base64url without padding", () => {
    const secret = randomSecret();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const bytes = atob(secret.replaceAll("-", "+").replaceAll("_", "/").padEnd(44, "="));
    expect(bytes.length).toBe(32);
    expect(randomSecret()).not.toBe(secret);
  });
});

describe("ensureDemoTriggers", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "demo-triggers-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("makes a private secret once and a trigger file the gateway loads with the env it returns", async () => {
    const first = await ensureDemoTriggers(dir, "dc1", "mcollective");
    const secret = first.env[DEMO_SECRET_ENV]!;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await readFile(first.secretPath, "utf8")).toBe(`${secret}\n`);
    expect((await stat(first.secretPath)).mode & 0o777).toBe(0o600);
    const again = await ensureDemoTriggers(dir, "dc1", "mcollective");
    expect(again.env[DEMO_SECRET_ENV]).toBe(secret);

    const loaded = loadTriggers(await readFile(first.triggersPath, "utf8"), {
      parse: parseTriggerFile,
      filename: first.triggersPath,
      env: first.env,
      keys: await KeyRegistry.fromConfig({ keys: [] }),
      jobs: true,
      data: true,
    });
    expect(loaded.ok && loaded.triggers.secrets.get(DEMO_TRIGGER)).toEqual({
      secrets: [secret],
      publicKeys: [],
    });
    const withoutSecret = loadTriggers(await readFile(first.triggersPath, "utf8"), {
      parse: parseTriggerFile,
      env: {},
      keys: await KeyRegistry.fromConfig({ keys: [] }),
      jobs: true,
      data: true,
    });
    expect(!withoutSecret.ok && withoutSecret.error).toContain(DEMO_SECRET_ENV);
  });

  it("leaves a trigger file the operator edited as it is", async () => {
    const edited = "triggers: []\n";
    await writeFile(join(dir, "triggers.yaml"), edited);
    const made = await ensureDemoTriggers(dir, "dc1", "mcollective");
    expect(await readFile(made.triggersPath, "utf8")).toBe(edited);
  });
});

describe("ensureDemoCaller", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "demo-caller-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("keeps the key, brings its policy up to date and leaves other keys alone", async () => {
    const made = await ensureDemoCaller(dir, "dc1", "mcollective");
    const keyFile = await readFile(made.keyPath, "utf8");
    const document = JSON.parse(await readFile(made.keysPath, "utf8"));
    const stale = { ...document.keys[0], policy: { clusters: ["dc1"] } };
    const other = {
      id: "ops",
      caller: "ops",
      scheme: "bearer",
      secret: "sha256:00",
      policy: { clusters: [] },
    };
    await writeFile(made.keysPath, JSON.stringify({ keys: [stale, other] }));

    await ensureDemoCaller(dir, "dc1", "mcollective");
    expect(await readFile(made.keyPath, "utf8")).toBe(keyFile);
    const updated = JSON.parse(await readFile(made.keysPath, "utf8"));
    expect(updated.keys[0]).toEqual(document.keys[0]);
    expect(updated.keys[0].policy.readJobs).toBe("allowed");
    expect(updated.keys[1]).toEqual(other);
  });
});
