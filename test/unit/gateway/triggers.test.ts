import { describe, expect, it } from "vitest";
import { loadTriggers } from "../../../lib/gateway/triggers.ts";
import { generateHttpKey, KeyRegistry } from "../../../lib/security/http/mod.ts";
import { parseTriggerFile } from "../../../lib/triggers/node.ts";

const POLICY = "{ clusters: [C1], collectives: ['*'], agents: [demo], actions: ['demo#*'] }";

function file(verify: string, extra = "") {
  return `triggers:
  - name: t1
    verify: ${verify}
    policy: ${POLICY}
    request: { cluster: C1, agent: demo, action: echo }
${extra}`;
}

async function registry() {
  const key = await generateHttpKey({
    id: "ci",
    caller: "ci",
    scheme: "ed25519",
    policy: { clusters: ["C1"], collectives: ["*"], agents: ["demo"], actions: ["demo#*"] },
  });
  return KeyRegistry.fromConfig({ keys: [key.config] });
}

describe("loadTriggers", () => {
  it("resolves each trigger's secrets from the environment", async () => {
    const loaded = loadTriggers(file("{ scheme: github, secrets_env: [GH_NEW, GH_OLD] }", "    locks: []"), {
      parse: parseTriggerFile,
      env: { GH_NEW: "new-secret", GH_OLD: "old-secret" },
      keys: await registry(),
      jobs: true,
      data: false,
    });
    expect(loaded.ok).toBe(true);
    if (!loaded.ok) return;
    expect(loaded.triggers.set.names()).toEqual(["t1"]);
    expect(loaded.triggers.secrets.get("t1")).toEqual({
      secrets: ["new-secret", "old-secret"],
      publicKeys: [],
    });
  });

  it("names the unset variables, never a value, and refuses triggers on a gateway without jobs", async () => {
    const loaded = loadTriggers(file("{ scheme: stripe, secrets_env: [STRIPE_SECRET] }", "    locks: []"), {
      parse: parseTriggerFile,
      env: {},
      keys: await registry(),
      jobs: false,
      data: false,
    });
    expect(loaded).toEqual({
      ok: false,
      error: expect.stringContaining("trigger t1: environment variables not set: STRIPE_SECRET"),
    });
    expect(!loaded.ok && loaded.error).toContain("turn jobs on");
  });

  it("checks the secret's form for its sender, and rfc9421 key ids against the keys file", async () => {
    const stripe = loadTriggers(file("{ scheme: stripe, secrets_env: [S] }", "    locks: []"), {
      parse: parseTriggerFile,
      env: { S: "not-a-whsec-secret" },
      keys: await registry(),
      jobs: true,
      data: true,
    });
    expect(!stripe.ok && stripe.error).toContain("trigger t1: secrets[0] is not a Stripe endpoint secret");
    expect(!stripe.ok && stripe.error).not.toContain("not-a-whsec-secret");
    const rfc = loadTriggers(file("{ scheme: rfc9421, keys: [ci, ghost] }", "    locks: []"), {
      parse: parseTriggerFile,
      env: {},
      keys: await registry(),
      jobs: true,
      data: true,
    });
    expect(rfc).toEqual({ ok: false, error: "trigger t1: verify.keys: no key ghost in the keys file" });
  });

  it("refuses a trigger that locks (its default) on a gateway without a data store", async () => {
    const loaded = loadTriggers(file("{ scheme: github, secrets_env: [G] }"), {
      parse: parseTriggerFile,
      env: { G: "secret" },
      keys: await registry(),
      jobs: true,
      data: false,
    });
    expect(!loaded.ok && loaded.error).toContain("need the data store");
  });

  it("passes on the file's own located errors", async () => {
    const loaded = loadTriggers("triggers:\n  - name: t1\n    verify: { scheme: carrier-pigeon }\n", {
      parse: parseTriggerFile,
      filename: "hooks.yaml",
      env: {},
      keys: await registry(),
      jobs: true,
      data: true,
    });
    expect(!loaded.ok && loaded.error).toMatch(/^hooks\.yaml:3:23 triggers\[0\]\.verify\.scheme: /m);
  });
});
