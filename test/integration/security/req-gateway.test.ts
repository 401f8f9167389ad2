// `choria-edge req` against the real gateway on Node, through a real federation (nats-servers, broker,
// simulated nodes): the client reads what the gateway actually sends, in every output mode.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runReq } from "../../../cli/req.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { generateHttpKey, type Policy } from "../../../lib/security/http/mod.ts";
import { captureIo } from "../../support/cli-io.ts";
import { CLUSTER, type Federation, gatewaySettings, startFederation } from "../gateway/support.ts";

const NODES = 8;
let federation: Federation;
let gateway: RunningGateway;
let dir: string;
let adminKey: string;
let narrowKey: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "choria-edge-req-gw-"));
  const everything: Policy = { clusters: [CLUSTER], collectives: ["*"], agents: ["*"], actions: ["*#*"] };
  const [admin, narrow] = await Promise.all([
    generateHttpKey({ id: "admin", caller: "ops", scheme: "ecdsa-p256-sha256", policy: everything }),
    generateHttpKey({
      id: "narrow",
      caller: "ci",
      scheme: "hmac-sha256",
      policy: { ...everything, agents: ["rpcutil"], actions: ["rpcutil#*"] },
    }),
  ]);
  adminKey = join(dir, "admin.json");
  narrowKey = join(dir, "narrow.json");
  await writeFile(adminKey, JSON.stringify(admin.keyFile), { mode: 0o600 });
  await writeFile(narrowKey, JSON.stringify(narrow.keyFile), { mode: 0o600 });
  federation = await startFederation(NODES);
  gateway = await startGateway(
    await gatewaySettings(federation.federation.url, JSON.stringify({ keys: [admin.config, narrow.config] })),
    { log: () => {}, audit: () => {} },
  );
});

afterAll(async () => {
  await gateway?.close();
  await federation?.stop();
  await rm(dir, { recursive: true, force: true });
});

const base = () => ["--gateway", gateway.url, "--cluster", CLUSTER, "--timeout", "5"];

describe("choria-edge req through the real gateway", () => {
  it("streams every node's reply with progress on a terminal, then prints the table; exit 0", async () => {
    const c = captureIo(true);
    const code = await runReq([...base(), "--key", adminKey, "rpcutil", "ping"], c.io);
    expect(c.stderr()).toMatch(new RegExp(`replies ${NODES}/${NODES} {2}ok ${NODES} {2}failed 0`));
    expect(code).toBe(0);
    const lines = c.stdout().trimEnd().split("\n");
    const rows = lines.slice(1, 1 + NODES);
    expect(rows.map((row) => row.split(/\s+/)[0]).sort()).toEqual(
      federation.fleet.map((n) => n.identity).sort(),
    );
    expect(rows.every((row) => /\sOK\s/.test(row))).toBe(true);
    expect(lines.at(-1)).toMatch(
      new RegExp(
        `^${NODES} replies: ok ${NODES}, failed 0, no reply 0, unexpected 0, done: expected in \\d+ ms$`,
      ),
    );
  });

  it("reports directed nodes that stay silent, with exit 1", async () => {
    const named = federation.fleet.slice(0, 2).map((n) => n.identity);
    const c = captureIo();
    const code = await runReq(
      [
        ...base(),
        "--key",
        adminKey,
        "--nodes",
        [...named, "ghost.example.net"].join(","),
        "--timeout",
        "1",
        "demo",
        "echo",
        "message=hi",
      ],
      c.io,
    );
    expect(code).toBe(1);
    expect(c.stdout()).toMatch(/^ghost\.example\.net\s+no reply$/m);
    expect(c.stdout()).toMatch(/2 replies: ok 2, failed 0, no reply 1/);
  });

  it("--json prints the gateway's document, with the inputs echoed back by demo#echo", async () => {
    const c = captureIo();
    const identity = federation.fleet[0]!.identity;
    const code = await runReq(
      [...base(), "--key", adminKey, "--json", "--identity", identity, "demo", "echo", "message=hi", "n:=2"],
      c.io,
    );
    expect(code).toBe(0);
    const document = JSON.parse(c.stdout());
    expect(document.summary).toMatchObject({ ok: 1, failed: 0, no_reply: 0 });
    expect(document.replies[0]).toMatchObject({
      identity,
      statuscode: 0,
      data: { message: "hi", n: 2, identity },
    });
  });

  it("--jsonl prints start, one reply per node and the summary", async () => {
    const c = captureIo();
    await runReq([...base(), "--key", adminKey, "--jsonl", "rpcutil", "ping"], c.io);
    const types = c
      .stdout()
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line).type);
    expect(types).toEqual(["start", ...Array(NODES).fill("reply"), "summary"]);
  });

  it("prints the gateway's refusal when the key's policy forbids the action", async () => {
    const c = captureIo();
    expect(await runReq([...base(), "--key", narrowKey, "demo", "echo"], c.io)).toBe(1);
    expect(c.stderr()).toMatch(
      /^choria-edge req: 403 Forbidden by policy: agent demo is not in the key's agents/,
    );
    const allowed = captureIo();
    expect(await runReq([...base(), "--key", narrowKey, "rpcutil", "ping"], allowed.io)).toBe(0);
  });
});
