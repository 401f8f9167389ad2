// `choria-edge req` against a real HTTP server that verifies with `authenticate`: the signer and the
// verifier agree over a socket, for every scheme, and the client reads the gateway's streams.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { runReq } from "../../../cli/req.ts";
import {
  type AuthResult,
  authenticate,
  type GatewayKeyConfig,
  KeyRegistry,
  MemoryReplayStore,
} from "../../../lib/security/http/mod.ts";
import { captureIo } from "../../support/cli-io.ts";
import { freePort } from "../../support/ports.ts";
import { ALLOW_DEMO } from "../../unit/security/http/support.ts";

interface Received {
  auth: AuthResult;
  accept: string | undefined;
  body: unknown;
}

type Responder = (res: ServerResponse, received: Received) => void;

const streamed = (events: unknown[]) => (res: ServerResponse) => {
  res.writeHead(200, { "content-type": "application/x-ndjson" });
  // One event per write, flushed separately, as a gateway streams them.
  let i = 0;
  const next = () => {
    if (i === events.length) return res.end();
    res.write(`${JSON.stringify(events[i++])}\n`);
    setTimeout(next, 5);
  };
  next();
};

const START = { type: "start", request_id: "r1", discovered: 3, expected: 3 };
const REPLIES = [
  { type: "reply", identity: "node2", statuscode: 0, statusmsg: "OK", data: { pong: 1 }, ms: 12.4 },
  { type: "reply", identity: "node1", statuscode: 1, statusmsg: "boom", data: null, ms: 7, extra: "ignored" },
];
const SUMMARY = {
  type: "summary",
  request_id: "r1",
  summary: {
    discovered: 3,
    expected: 3,
    ok: 1,
    failed: 1,
    no_reply: 1,
    unexpected: 0,
    discovery_ms: 5,
    elapsed_ms: 250,
    done: "timeout",
  },
  no_reply: ["node3"],
  unexpected: [],
};

describe("choria-edge req against a verifying server", () => {
  let dir: string;
  let server: Server;
  let gateway: string;
  let keys: KeyRegistry;
  const configs: GatewayKeyConfig[] = [];
  const replay = new MemoryReplayStore();
  const received: Received[] = [];
  let respond: Responder = streamed([START, ...REPLIES, SUMMARY]);

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers))
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    const body = new Uint8Array(Buffer.concat(chunks));
    const auth = await authenticate(
      { method: req.method ?? "GET", url: `${gateway}${req.url}`, headers, body },
      { keys, replay, maxBodyBytes: 64 * 1024 },
    );
    const entry = { auth, accept: req.headers.accept, body: JSON.parse(new TextDecoder().decode(body)) };
    received.push(entry);
    if (!auth.ok) {
      res.writeHead(auth.status, { "content-type": "application/problem+json" });
      res.end(
        JSON.stringify({
          type: `https://choria-edge.dev/problems/${auth.problem}`,
          title: auth.problem,
          status: auth.status,
          detail: auth.detail,
        }),
      );
      return;
    }
    respond(res, entry);
  }

  async function generate(id: string, scheme: string): Promise<string> {
    const file = join(dir, `${id}.json`);
    const c = captureIo();
    expect(
      await runReq(
        ["--generate-key", "--key-id", id, "--scheme", scheme, "--caller", "ci", "--key", file],
        c.io,
      ),
    ).toBe(0);
    const entry = JSON.parse(c.stdout()) as GatewayKeyConfig;
    expect(entry).toMatchObject({ id, caller: "ci", scheme, policy: { clusters: [], actions: [] } });
    configs.push({ ...entry, policy: ALLOW_DEMO });
    return file;
  }

  const previousHome = process.env.CHORIA_EDGE_HOME;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "choria-edge-req-"));
    // No local stack runs from here, so no default comes from a stack.json.
    process.env.CHORIA_EDGE_HOME = dir;
    server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    gateway = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    if (previousHome === undefined) delete process.env.CHORIA_EDGE_HOME;
    else process.env.CHORIA_EDGE_HOME = previousHome;
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    received.length = 0;
    respond = streamed([START, ...REPLIES, SUMMARY]);
  });

  const files: Record<string, string> = {};
  const schemes = ["ed25519", "ecdsa-p256-sha256", "hmac-sha256", "bearer"] as const;

  it("generates key files (mode 0600, never overwritten) and config entries", async () => {
    for (const scheme of schemes) files[scheme] = await generate(`${scheme}-key`, scheme);
    keys = await KeyRegistry.fromConfig({ keys: configs });
    expect((await stat(files.ed25519!)).mode & 0o777).toBe(0o600);
    const again = captureIo();
    expect(await runReq(["--generate-key", "--key-id", "x", "--key", files.ed25519!], again.io)).toBe(1);
    expect(again.stderr()).toMatch(/cannot create/);
    expect(JSON.parse(await readFile(files.bearer!, "utf8"))).toMatchObject({
      id: "bearer-key",
      scheme: "bearer",
    });
  });

  for (const scheme of schemes) {
    it(`signs with ${scheme} so that the server accepts it, and prints the table`, async () => {
      const c = captureIo();
      const code = await runReq(["--gateway", gateway, "--key", files[scheme]!, "rpcutil", "ping"], c.io);
      expect(received).toHaveLength(1);
      expect(received[0]!.auth).toMatchObject({ ok: true, key: { id: `${scheme}-key`, caller: "ci" } });
      expect(received[0]!.accept).toBe("application/x-ndjson");
      expect(code).toBe(1);
      const lines = c.stdout().trimEnd().split("\n");
      expect(lines[0]).toMatch(/^identity\s+status\s+statusmsg\s+ms\s+data$/);
      expect(lines[1]).toMatch(/^node1\s+Aborted\s+boom\s+7$/);
      expect(lines[2]).toMatch(/^node2\s+OK\s+OK\s+12\s+pong=1$/);
      expect(lines[3]).toMatch(/^node3\s+no reply$/);
      expect(lines.at(-1)).toBe(
        "2 replies: ok 1, failed 1, no reply 1, unexpected 0, done: timeout in 250 ms",
      );
      expect(c.stderr()).toBe("");
    });
  }

  it("sends the body the gateway's schema wants, from inputs and filter flags", async () => {
    const c = captureIo();
    await runReq(
      [
        "--gateway",
        `${gateway}/`,
        "--key",
        files.ed25519!,
        "--cluster",
        "C1",
        "--collective",
        "ops",
        "--filter-fact",
        "country=nl",
        "--filter-fact",
        "memory>=4",
        "--filter-class",
        "web",
        "--identity",
        "/n\\d/",
        "--filter-agent",
        "demo",
        "--compound",
        "with('x')",
        "--limit",
        "10%",
        "--timeout",
        "5",
        "--discovery-timeout",
        "1.5",
        "--expect",
        "2",
        "demo",
        "echo",
        "message=hello=world",
        "count:=3",
        'tags:=["a"]',
      ],
      c.io,
    );
    expect(received[0]!.auth.ok).toBe(true);
    expect(received[0]!.body).toEqual({
      agent: "demo",
      action: "echo",
      data: { message: "hello=world", count: 3, tags: ["a"] },
      cluster: "C1",
      collective: "ops",
      filter: {
        fact: [
          { fact: "country", operator: "==", value: "nl" },
          { fact: "memory", operator: ">=", value: "4" },
        ],
        class: ["web"],
        agent: ["demo"],
        identity: ["/n\\d/"],
        compound: "with('x')",
      },
      limit: "10%",
      timeout: 5,
      discovery_timeout: 1.5,
      expect: 2,
    });
    const direct = captureIo();
    await runReq(
      ["--gateway", gateway, "--key", files.ed25519!, "--nodes", "a,b", "--broadcast", "rpcutil", "ping"],
      direct.io,
    );
    expect(received[1]!.body).toMatchObject({
      nodes: ["a", "b"],
      mode: "broadcast",
      cluster: "mcollective",
      data: {},
    });
  });

  it("exits 0 when every target answered OK", async () => {
    respond = streamed([
      START,
      REPLIES[0],
      { ...SUMMARY, summary: { ...SUMMARY.summary, failed: 0, no_reply: 0 }, no_reply: [] },
    ]);
    const c = captureIo();
    expect(await runReq(["--gateway", gateway, "--key", files.ed25519!, "rpcutil", "ping"], c.io)).toBe(0);
  });

  // Node's fetch costs a process ~150 ms of CPU on its first call (undici loads), more than the rest of
  // req's start-up: req talks node:http.
  it("sends and streams without fetch", async () => {
    respond = streamed([START, ...REPLIES, SUMMARY]);
    vi.stubGlobal("fetch", () => Promise.reject(new Error("fetch was called")));
    try {
      const c = captureIo();
      expect(await runReq(["--gateway", gateway, "--key", files.ed25519!, "rpcutil", "ping"], c.io)).toBe(1);
      expect(c.stderr()).not.toContain("fetch");
      expect(c.stdout()).toContain("node2");
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it("--jsonl prints the stream as it came, and skips events and fields it does not know", async () => {
    const events = [START, { type: "progress", percent: 50 }, ...REPLIES, SUMMARY];
    respond = streamed(events);
    const c = captureIo();
    expect(
      await runReq(["--gateway", gateway, "--key", files.ed25519!, "--jsonl", "rpcutil", "ping"], c.io),
    ).toBe(1);
    expect(
      c
        .stdout()
        .trimEnd()
        .split("\n")
        .map((line) => JSON.parse(line)),
    ).toEqual(events);
  });

  it("--json asks for JSON and prints the final document", async () => {
    const document = {
      request_id: "r1",
      summary: SUMMARY.summary,
      replies: [REPLIES[0]],
      no_reply: [],
      unexpected: [],
    };
    respond = (res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(document));
    };
    const c = captureIo();
    expect(
      await runReq(["--gateway", gateway, "--key", files.ed25519!, "--json", "rpcutil", "ping"], c.io),
    ).toBe(0);
    expect(received[0]!.accept).toBe("application/json");
    expect(JSON.parse(c.stdout())).toEqual(document);
  });

  it("renders a whole JSON document when the server does not stream", async () => {
    const document = {
      request_id: "r1",
      summary: SUMMARY.summary,
      replies: REPLIES,
      no_reply: ["node3"],
      unexpected: [],
    };
    respond = (res) => {
      res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
      res.end(JSON.stringify(document));
    };
    const c = captureIo();
    expect(await runReq(["--gateway", gateway, "--key", files.ed25519!, "rpcutil", "ping"], c.io)).toBe(1);
    expect(c.stdout()).toMatch(/^node1\s+Aborted\s+boom\s+7$/m);
    expect(c.stdout()).toMatch(/^node3\s+no reply$/m);
  });

  it("keeps a progress line on a terminal and clears it before the table", async () => {
    const c = captureIo(true);
    await runReq(["--gateway", gateway, "--key", files.ed25519!, "rpcutil", "ping"], c.io);
    expect(c.stderr()).toMatch(/\r\x1b\[Kreplies 0\/3 {2}ok 0 {2}failed 0/);
    expect(c.stderr()).toMatch(/\r\x1b\[Kreplies 2\/3 {2}ok 1 {2}failed 1/);
    expect(c.stderr().endsWith("\r\x1b[K")).toBe(true);
    expect(c.stdout()).toMatch(/^identity/);
  });

  it("reports a refusal's problem document and a stream that ends in an error", async () => {
    const stranger = join(dir, "stranger.json");
    await runReq(["--generate-key", "--key-id", "stranger", "--key", stranger], captureIo().io);
    const c = captureIo();
    expect(await runReq(["--gateway", gateway, "--key", stranger, "rpcutil", "ping"], c.io)).toBe(1);
    expect(received[0]!.auth).toMatchObject({ ok: false, problem: "unknown_key" });
    expect(c.stderr()).toMatch(
      /^choria-edge req: 401 unknown_key: the signature's keyid names no key known here/,
    );

    respond = streamed([START, { type: "error", title: "NATS unavailable", status: 503, detail: "gone" }]);
    const failed = captureIo();
    expect(await runReq(["--gateway", gateway, "--key", files.ed25519!, "rpcutil", "ping"], failed.io)).toBe(
      1,
    );
    expect(failed.stderr()).toBe("choria-edge req: NATS unavailable: gone\n");
  });

  it("refuses bad usage with exit 2, and reports an unreachable gateway", async () => {
    const cases = [
      ["--key", files.ed25519!, "rpcutil"],
      ["rpcutil", "ping"],
      ["--key", files.ed25519!, "rpcutil", "ping", "novalue"],
      ["--key", files.ed25519!, "rpcutil", "ping", "x:=nope"],
      ["--key", files.ed25519!, "--filter-fact", "???", "rpcutil", "ping"],
      ["--key", files.ed25519!, "--timeout", "soon", "rpcutil", "ping"],
      ["--key", join(dir, "missing.json"), "rpcutil", "ping"],
      ["--generate-key", "--key", join(dir, "new.json")],
      ["--generate-key", "--key-id", "n", "--scheme", "rsa", "--key", join(dir, "new.json")],
      ["--unknown-flag"],
    ];
    for (const argv of cases) {
      const c = captureIo();
      expect({ argv, code: await runReq(argv, c.io) }).toEqual({ argv, code: 2 });
    }
    expect(received).toHaveLength(0);
    const closed = captureIo();
    const nobody = `http://127.0.0.1:${await freePort()}`;
    expect(await runReq(["--gateway", nobody, "--key", files.ed25519!, "rpcutil", "ping"], closed.io)).toBe(
      1,
    );
    expect(closed.stderr()).toMatch(/ECONNREFUSED/);
  });
});
