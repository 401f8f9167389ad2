// `choria-edge hook send` over a real socket: what it sends, and what its --print-curl prints when the
// real curl runs it, is a delivery the gateway's verifier accepts. (Sending to a real gateway, with its
// triggers, jobs and locks, is the gateway tests' part.)
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runHook } from "../../../cli/hook.ts";
import { ensureDemoCaller } from "../../../infra/demo-caller.ts";
import { DEMO_SECRET_ENV, ensureDemoTriggers } from "../../../infra/demo-triggers.ts";
import { authenticate, KeyRegistry, MemoryReplayStore } from "../../../lib/security/http/mod.ts";
import { verifyWebhook, type WebhookScheme } from "../../../lib/security/webhooks/mod.ts";

const run = promisify(execFile);

interface Received {
  method: string;
  path: string;
  headers: Headers;
  body: Uint8Array;
}

type Responder = (req: Received, res: ServerResponse) => void | Promise<void>;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t) } },
    stdout: () => out.join(""),
    stderr: () => err.join(""),
  };
}

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

const accepted: Responder = (_req, res) =>
  answer(res, 202, { job_id: "J1", status_url: "http://x/v1/jobs/J1" }, { location: "/v1/jobs/J1" });

describe("choria-edge hook send", () => {
  let home: string;
  let server: Server;
  let url: string;
  let demoSecret: string;
  const previousHome = process.env.CHORIA_EDGE_HOME;
  const received: Received[] = [];
  let respond: Responder = accepted;

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers))
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    const entry = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers,
      body: new Uint8Array(Buffer.concat(chunks)),
    };
    received.push(entry);
    await respond(entry, res);
  }

  const verify = (scheme: WebhookScheme, secret: string, delivery: Received) =>
    verifyWebhook(scheme, { secrets: [secret] }, delivery, { now: new Date() });

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "choria-edge-hook-"));
    // The command finds the stack's demo secret and caller key through CHORIA_EDGE_HOME.
    process.env.CHORIA_EDGE_HOME = home;
    demoSecret = (await ensureDemoTriggers(home, "dc1", "mcollective")).env[DEMO_SECRET_ENV]!;
    server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    if (previousHome === undefined) delete process.env.CHORIA_EDGE_HOME;
    else process.env.CHORIA_EDGE_HOME = previousHome;
    delete process.env.HOOK_TEST_SECRET;
    await new Promise((resolve) => server.close(resolve));
    await rm(home, { recursive: true, force: true });
  });

  beforeEach(() => {
    received.length = 0;
    respond = accepted;
  });

  it("--print-curl prints a curl command that sends a GitHub push signed with the stack's demo secret", async () => {
    const c = capture();
    const sha = "0123456789abcdef0123456789abcdef01234567";
    expect(
      await runHook(["send", "github-push", "--url", `${url}/`, "--sha", sha, "--print-curl"], c.io),
    ).toBe(0);
    expect(received).toHaveLength(0);
    expect(c.stdout()).not.toContain(demoSecret);

    const { stdout } = await run("sh", ["-c", c.stdout()]);
    expect(JSON.parse(stdout)).toEqual({ job_id: "J1", status_url: "http://x/v1/jobs/J1" });
    expect(received).toHaveLength(1);
    const delivery = received[0]!;
    expect(delivery).toMatchObject({ method: "POST", path: "/v1/hooks/github-push" });
    expect(await verify("github", demoSecret, delivery)).toMatchObject({ ok: true, event: "push" });
    expect(JSON.parse(new TextDecoder().decode(delivery.body))).toMatchObject({
      ref: "refs/heads/main",
      after: sha,
      repository: { full_name: "acme/demo" },
    });
  });

  it("--print-curl with --body sends the file byte for byte, here as a Stripe event", async () => {
    const body = join(home, "event with 'quote'.json");
    const text = '{"id": "evt_1",\n "type": "payment_intent.succeeded", "note": "ünïcode"}\n';
    await writeFile(body, text);
    const secretFile = join(home, "stripe-secret");
    await writeFile(secretFile, "whsec_test\n");
    const c = capture();
    const argv = [
      "send",
      "pay",
      "--url",
      url,
      "--scheme",
      "stripe",
      "--body",
      body,
      "--secret-file",
      secretFile,
    ];
    expect(await runHook([...argv, "--print-curl"], c.io)).toBe(0);
    await run("sh", ["-c", c.stdout()]);
    const delivery = received[0]!;
    expect(Buffer.from(delivery.body).equals(await readFile(body))).toBe(true);
    expect(await verify("stripe", "whsec_test", delivery)).toMatchObject({ ok: true, deliveryId: "evt_1" });
  });

  it("sends the delivery itself, prints the answer, and exits 0 on 2xx and 1 otherwise", async () => {
    process.env.HOOK_TEST_SECRET = `whsec_${btoa("standard secret")}`;
    const argv = [
      "send",
      "std",
      "--url",
      url,
      "--scheme",
      "standard-webhooks",
      "--secret-env",
      "HOOK_TEST_SECRET",
    ];
    const body = join(home, "standard.json");
    await writeFile(body, '{"type":"invoice.paid"}');
    const ok = capture();
    expect(await runHook([...argv, "--body", body, "--delivery", "msg_42"], ok.io)).toBe(0);
    expect(ok.stdout()).toMatch(/^202 Accepted\n\{\n {2}"job_id": "J1"/);
    expect(await verify("standard-webhooks", process.env.HOOK_TEST_SECRET, received[0]!)).toMatchObject({
      ok: true,
      deliveryId: "msg_42",
    });

    respond = (_req, res) => answer(res, 401, { status: 401, detail: "bad signature" });
    const refused = capture();
    expect(await runHook([...argv, "--body", body], refused.io)).toBe(1);
    expect(refused.stdout()).toMatch(/^401 Unauthorized\n/);
  });

  it("--wait reads the job with the demo caller key until it ends", async () => {
    const caller = await ensureDemoCaller(home, "dc1", "mcollective");
    const keys = await KeyRegistry.fromConfig(JSON.parse(await readFile(caller.keysPath, "utf8")));
    const replay = new MemoryReplayStore();
    let reads = 0;
    respond = async (req, res) => {
      if (req.method === "POST") return accepted(req, res);
      const auth = await authenticate(
        { method: req.method, url: `${url}${req.path}`, headers: req.headers, body: req.body },
        { keys, replay, maxBodyBytes: 1024 },
      );
      if (!auth.ok) return answer(res, auth.status, { detail: auth.detail });
      reads += 1;
      answer(res, 200, { job: { id: "J1", state: reads < 2 ? "running" : "complete" }, results: [] });
    };
    const c = capture();
    expect(await runHook(["send", "github-push", "--url", url, "--wait"], c.io)).toBe(0);
    expect(reads).toBe(2);
    expect(received.slice(1).map((r) => `${r.method} ${r.path}`)).toEqual([
      "GET /v1/jobs/J1?limit=1",
      "GET /v1/jobs/J1?limit=1",
    ]);
    expect(c.stdout()).toContain('job J1 ended complete\n{\n  "id": "J1",\n  "state": "complete"\n}');
  });

  it("a delivery id sent twice carries the same made-up push, so the gateway can answer with its first job", async () => {
    const send = async (delivery: string) => {
      expect(await runHook(["send", "github-push", "--url", url, "--delivery", delivery], capture().io)).toBe(
        0,
      );
      return received.at(-1)!;
    };
    const [first, again, other] = [await send("d1"), await send("d1"), await send("d2")];
    expect(first.headers.get("x-github-delivery")).toBe("d1");
    expect(Buffer.from(again.body).equals(Buffer.from(first.body))).toBe(true);
    expect(Buffer.from(other.body).equals(Buffer.from(first.body))).toBe(false);
    const push = JSON.parse(new TextDecoder().decode(first.body)) as {
      after: string;
      head_commit: { id: string };
    };
    expect(push.after).toMatch(/^[0-9a-f]{40}$/);
    expect(push.head_commit.id).toBe(push.after);
    // Without a delivery id each push is new.
    await runHook(["send", "github-push", "--url", url], capture().io);
    await runHook(["send", "github-push", "--url", url], capture().io);
    const [x, y] = received.slice(-2).map((r) => JSON.parse(new TextDecoder().decode(r.body)).after);
    expect(x).not.toBe(y);
  });

  it("refuses command lines it cannot sign honestly", async () => {
    for (const argv of [
      ["send"],
      ["send", "x", "--scheme", "bitbucket"],
      ["send", "x", "--scheme", "stripe", "--secret-env", "HOME"],
      ["send", "x", "--scheme", "slack", "--body", "b.json", "--delivery", "d", "--secret-env", "HOME"],
      ["send", "x", "--event", "push", "--scheme", "standard-webhooks", "--body", "b.json"],
      ["send", "x", "--sha", "HEAD"],
      ["send", "x", "--secret-env", "CHORIA_EDGE_TEST_UNSET_VARIABLE"],
    ]) {
      const c = capture();
      expect(await runHook(argv, c.io), argv.join(" ")).toBe(2);
      expect(c.stderr()).toMatch(/^choria-edge hook: /);
    }
    expect(received).toHaveLength(0);
  });
});

describe("choria-edge hook compile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "choria-edge-hook-compile-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prints a YAML trigger file as one line of JSON, and names the line of an error", async () => {
    const good = join(dir, "good.yaml");
    await writeFile(
      good,
      await readFile(new URL("../../fixtures/triggers/github-push.yaml", import.meta.url)),
    );
    const ok = capture();
    expect(await runHook(["compile", good], ok.io)).toBe(0);
    expect(ok.stdout().trimEnd()).not.toContain("\n");
    expect(JSON.parse(ok.stdout()).triggers.length).toBeGreaterThan(0);

    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "triggers:\n  - name: t\n    verify: { scheme: carrier-pigeon }\n");
    const failed = capture();
    expect(await runHook(["compile", bad], failed.io)).toBe(1);
    expect(failed.stderr()).toContain(`${bad}:3:`);
    expect(failed.stdout()).toBe("");
  });
});
