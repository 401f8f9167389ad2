// End to end on Node: signed HTTP → the gateway (@hono/node-server, TCP NATS) → federation nats-server →
// broker → member nats-server → simulated nodes, which verify the gateway's signature and filter → replies
// back the same way → the HTTP response.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeGatewaySettings } from "../../../functions/gateway-env.ts";
import { type RunningGateway, startGateway } from "../../../functions/node.ts";
import { gatewayConfigFrom } from "../../../lib/gateway/config.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { matchFilter, normaliseFilter } from "../../../lib/protocol/filter.ts";
import type { AuditEvent } from "../../../lib/security/http/mod.ts";
import { type NatsServer, restartNatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";
import { freePort } from "../../support/ports.ts";
import {
  CLUSTER,
  type Federation,
  parseEvents,
  signedInit,
  startFederation,
  type TestKeys,
  testKeys,
} from "./support.ts";

const NODES = 60;
let federation: Federation;
let keys: TestKeys;
let gateway: RunningGateway;
const audit: AuditEvent[] = [];

async function settings(natsUrl: string, connectTimeoutMs = 2000): Promise<NodeGatewaySettings> {
  const pki = await testPki();
  const config = gatewayConfigFrom({
    clusters: { [CLUSTER]: ["mcollective"] },
    maxBodyBytes: 16 * 1024,
    connectTimeoutMs,
  });
  if (!config.ok) throw new Error(config.error);
  return {
    config: config.config,
    listen: { host: "127.0.0.1", port: 0 },
    natsServers: [natsUrl],
    natsAuth: { type: "none" },
    certPem: pki.gateway.certPem,
    keyPem: pki.gateway.keyPem,
    keysJson: keys.json,
    readyFile: undefined,
  };
}

let monitorUrl: string;

beforeAll(async () => {
  const monitorPort = await freePort();
  monitorUrl = `http://127.0.0.1:${monitorPort}`;
  [federation, keys] = await Promise.all([
    startFederation(NODES, { federationConfig: `http: "127.0.0.1:${monitorPort}"` }),
    testKeys(),
  ]);
  gateway = await startGateway(await settings(federation.federation.url), {
    log: () => {},
    audit: (event) => audit.push(event),
  });
});

afterAll(async () => {
  await gateway?.close();
  await federation?.stop();
});

async function rpc(body: Record<string, unknown>, key = keys.admin, headers: Record<string, string> = {}) {
  const url = `${gateway.url}/v1/rpc`;
  return fetch(url, await signedInit(url, { cluster: CLUSTER, ...body }, key, headers));
}

interface RpcResponse {
  request_id: string;
  summary: Record<string, unknown>;
  replies: {
    identity: string;
    statuscode: number;
    statusmsg: string;
    data: Record<string, unknown>;
    ms: number;
  }[];
  no_reply: string[];
  unexpected: string[];
}

async function json(res: Response): Promise<RpcResponse> {
  expect(res.status).toBe(200);
  return (await res.json()) as RpcResponse;
}

const identities = (filter: Parameters<typeof normaliseFilter>[0], agent = "rpcutil") =>
  federation.fleet
    .filter((n) => n.agents.includes(agent) && matchFilter(normaliseFilter(filter), n))
    .map((n) => n.identity)
    .sort();

describe("POST /v1/rpc on Node, through a real federation", () => {
  it("discovers with the filter, then asks exactly the discovered nodes, which all answer", async () => {
    const filter = { fact: [{ fact: "country", operator: "==" as const, value: "nl" }] };
    const matching = identities(filter);
    expect(matching.length).toBeGreaterThan(3);
    const res = await rpc({ agent: "rpcutil", action: "ping", filter: { fact: ["country=nl"] } });
    const result = await json(res);
    expect(result.summary).toMatchObject({
      discovered: matching.length,
      expected: matching.length,
      ok: matching.length,
      failed: 0,
      no_reply: 0,
      unexpected: 0,
      done: "expected",
    });
    expect(result.replies.map((r) => r.identity).sort()).toEqual(matching);
    expect(result.replies.every((r) => typeof r.data.pong === "number" && r.ms >= 0)).toBe(true);
    expect(result.request_id).toMatch(/^[0-9a-f]{32}$/);
    expect(res.headers.get("server-timing")).toMatch(/nats;dur=.*discovery;dur=.*rpc;dur=/);
  });

  it("named nodes: silent ones are reported as no reply once the timeout ends the request", async () => {
    const real = federation.fleet.slice(0, 3).map((n) => n.identity);
    const ghosts = ["ghost1.example.net", "ghost2.example.net"];
    const result = await json(
      await rpc({ agent: "rpcutil", action: "ping", nodes: [ghosts[0], ...real, ghosts[1]], timeout: 0.8 }),
    );
    expect(result.summary).toMatchObject({ discovered: 5, expected: 5, ok: 3, no_reply: 2, done: "timeout" });
    expect(result.summary.discovery_ms).toBeNull();
    expect(result.no_reply).toEqual(ghosts);
    expect(result.replies.map((r) => r.identity).sort()).toEqual([...real].sort());
  });

  it("reports each node's status: a failing action counts as failed with its message", async () => {
    const withDemo = federation.fleet.filter((n) => n.agents.includes("demo")).slice(0, 4);
    const result = await json(
      await rpc({
        agent: "demo",
        action: "fail",
        data: { message: "disk full", code: 5 },
        nodes: withDemo.map((n) => n.identity),
      }),
    );
    expect(result.summary).toMatchObject({ ok: 0, failed: 4, done: "expected" });
    expect(result.replies.every((r) => r.statuscode === 5 && r.statusmsg === "disk full")).toBe(true);
  });

  it("limit keeps a share of the discovered nodes, rounding down", async () => {
    const all = identities({});
    const result = await json(await rpc({ agent: "rpcutil", action: "ping", limit: "10%" }));
    expect(result.summary).toMatchObject({
      discovered: all.length,
      expected: Math.floor(all.length / 10),
      ok: Math.floor(all.length / 10),
      done: "expected",
    });
  });

  it("broadcast mode skips discovery: who should answer is unknown unless expect says how many", async () => {
    const all = identities({});
    const result = await json(
      await rpc({ agent: "rpcutil", action: "ping", mode: "broadcast", expect: all.length }, keys.token),
    );
    expect(result.summary).toMatchObject({
      discovered: null,
      expected: all.length,
      ok: all.length,
      no_reply: 0,
      discovery_ms: null,
      done: "expected",
    });
    const idle = await json(
      await rpc({ agent: "rpcutil", action: "ping", mode: "broadcast", idle_timeout: 0.3 }, keys.token),
    );
    expect(idle.summary).toMatchObject({ expected: null, no_reply: null, ok: all.length, done: "idle" });
  });

  it("streams ndjson: start, one reply per node as it arrives, then the summary", async () => {
    const nodes = federation.fleet.slice(0, 5).map((n) => n.identity);
    const res = await rpc({ agent: "rpcutil", action: "ping", nodes }, keys.admin, {
      accept: "application/x-ndjson",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const events = parseEvents(await res.text(), "ndjson");
    expect(events.map((e) => e.type)).toEqual([
      "start",
      "reply",
      "reply",
      "reply",
      "reply",
      "reply",
      "summary",
    ]);
    expect(events[0]).toMatchObject({ discovered: 5, expected: 5 });
    expect(events.at(-1)).toMatchObject({ summary: { ok: 5, done: "expected" }, no_reply: [] });
    expect(events.at(-1)?.request_id).toBe(events[0]?.request_id);
  });

  it("streams server-sent events with the same events", async () => {
    const res = await rpc(
      {
        agent: "rpcutil",
        action: "ping",
        nodes: [federation.fleet[0]!.identity, "ghost.example.net"],
        timeout: 0.5,
      },
      keys.admin,
      { accept: "text/event-stream" },
    );
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = parseEvents(await res.text(), "sse");
    expect(events.map((e) => e.type)).toEqual(["start", "reply", "summary"]);
    expect(events[2]).toMatchObject({ no_reply: ["ghost.example.net"], summary: { done: "timeout" } });
  });

  it("applies the key's maxNodes to what discovery found, before anything is sent", async () => {
    audit.length = 0;
    const res = await rpc(
      { agent: "rpcutil", action: "ping", filter: { fact: ["country=/./"] } },
      keys.narrow,
    );
    expect(res.status).toBe(403);
    const doc = (await res.json()) as { type: string; detail: string };
    expect(doc.type).toBe(`${PROBLEM_BASE}forbidden`);
    expect(doc.detail).toContain("maxNodes of 5");
    expect(audit).toEqual([
      expect.objectContaining({ decision: "refused", reason: "forbidden", key: "narrow" }),
    ]);
    const allowed = await json(
      await rpc(
        { agent: "rpcutil", action: "ping", filter: { fact: ["country=nl"] }, limit: 5 },
        keys.narrow,
      ),
    );
    expect(allowed.summary).toMatchObject({ expected: 5, ok: 5 });
  });

  it("writes an accepted audit line with the request id and target count", async () => {
    audit.length = 0;
    const result = await json(
      await rpc({ agent: "rpcutil", action: "ping", nodes: [federation.fleet[1]!.identity] }),
    );
    expect(audit).toEqual([
      expect.objectContaining({
        decision: "accepted",
        status: 200,
        key: "admin",
        caller: "ops",
        callerid: "choria=admin.mcollective",
        request_id: result.request_id,
        targets: 1,
      }),
    ]);
  });

  it("every request so far went over one NATS connection, made at the first request", async () => {
    const connz = (await (await fetch(`${monitorUrl}/connz`)).json()) as { connections: { name?: string }[] };
    const gateways = connz.connections.filter((c) => c.name?.startsWith("choria-edge-gateway-"));
    expect(gateways).toHaveLength(1);
  });

  it("over a real socket: 413 for a large body, 400 with the field path, 404 for an unknown cluster", async () => {
    const big = await rpc({ agent: "rpcutil", action: "ping", data: { pad: "x".repeat(20_000) } });
    expect(big.status).toBe(413);
    expect(big.headers.get("content-type")).toBe("application/problem+json");
    const invalid = await rpc({ agent: "rpcutil", action: "ping", filter: { class: ["/(/"] } });
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe(
      "filter.class.0",
    );
    const unknown = await rpc({ agent: "rpcutil", action: "ping", cluster: "elsewhere" });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}unknown-cluster`);
  });

  it("answers 413 to every over-limit body sent in chunks, never a reset mid-upload", async () => {
    // The refusal comes while the caller is still sending: hanging up at once had about half of these
    // callers see a broken socket instead of the answer.
    const chunk = new TextEncoder().encode("x".repeat(4096));
    const statuses: (number | string)[] = [];
    for (let i = 0; i < 20; i++) {
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 100) controller.enqueue(chunk);
          else controller.close();
        },
      });
      const headers = { "content-type": "application/json" };
      const init = { method: "POST", headers, body, duplex: "half" } as RequestInit;
      const answer = await fetch(`${gateway.url}/v1/rpc`, init).then(
        async (res) => `${res.status} ${((await res.json()) as { type: string }).type}`,
        (err: Error) => `failed: ${String(err.cause ?? err)}`,
      );
      statuses.push(answer);
    }
    expect(new Set(statuses)).toEqual(new Set([`413 ${PROBLEM_BASE}payload-too-large`]));
  });

  it("refuses data nested 5,000 levels deep (10 KB, under the limit) as invalid-body, before discovery", async () => {
    audit.length = 0;
    const received = federation.nodes.stats.received;
    const nested = `${"[".repeat(5000)}${"]".repeat(5000)}`;
    const text = `{"cluster":"${CLUSTER}","agent":"rpcutil","action":"ping","data":{"deep":${nested}}}`;
    expect(text.length).toBeLessThan(16 * 1024);
    const url = `${gateway.url}/v1/rpc`;
    const res = await fetch(url, await signedInit(url, text, keys.admin));
    expect(res.status).toBe(400);
    const doc = (await res.json()) as { type: string; detail: string; errors: { field: string }[] };
    expect(doc.type).toBe(`${PROBLEM_BASE}invalid-body`);
    expect(doc.detail).toContain("deeper than 64 levels");
    expect(doc.errors[0]!.field).toBe("");
    expect(JSON.stringify(doc)).not.toMatch(/call stack/i);
    expect(audit).toEqual([
      expect.objectContaining({ decision: "refused", reason: "invalid-body", status: 400, key: "admin" }),
    ]);
    // Nothing reached the fleet: no discovery, no request.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(federation.nodes.stats.received).toBe(received);
  });
});

describe("a client that hangs up mid-body", () => {
  /** Sends the head and half the body over a raw socket, then closes it; resolves once it is closed. */
  async function hangUp(head: string, part: string): Promise<void> {
    const { port } = new URL(gateway.url);
    const socket = connect(Number(port), "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    await new Promise<void>((resolve) => socket.write(`${head}\r\n${part}`, () => resolve()));
    // Long enough for the gateway to be reading the body when the connection goes.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await new Promise<void>((resolve) => {
      socket.once("close", () => resolve());
      socket.destroy();
    });
  }

  async function auditedAfter(count: number): Promise<AuditEvent[]> {
    const deadline = Date.now() + 5000;
    while (audit.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return audit.slice(0, count);
  }

  it("is audited as client-aborted, not as a failure of the gateway, with or without a length", async () => {
    audit.length = 0;
    const body = JSON.stringify({
      cluster: CLUSTER,
      agent: "rpcutil",
      action: "ping",
      data: { pad: "x".repeat(500) },
    });
    const half = body.slice(0, 200);
    const request = (framing: string) =>
      `POST /v1/rpc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${framing}\r\n`;
    await hangUp(request(`Content-Length: ${body.length}\r\n`), half);
    await hangUp(request("Transfer-Encoding: chunked\r\n"), `${half.length.toString(16)}\r\n${half}\r\n`);
    const events = await auditedAfter(2);
    expect(events).toEqual([
      expect.objectContaining({
        decision: "aborted",
        reason: "client-aborted",
        method: "POST",
        path: "/v1/rpc",
      }),
      expect.objectContaining({
        decision: "aborted",
        reason: "client-aborted",
        method: "POST",
        path: "/v1/rpc",
      }),
    ]);
    expect(events.map((e) => e.status)).toEqual([499, 499]);
    // The gateway still answers the next caller.
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
  });
});

describe("when NATS is unreachable", () => {
  it("answers 503 with Retry-After when no server listens", async () => {
    const port = await freePort();
    const orphan = await startGateway(await settings(`nats://127.0.0.1:${port}`, 500), { log: () => {} });
    try {
      const url = `${orphan.url}/v1/rpc`;
      const res = await fetch(
        url,
        await signedInit(url, { cluster: CLUSTER, agent: "rpcutil", action: "ping" }, keys.admin),
      );
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      expect(((await res.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}upstream-unavailable`);
      expect(await (await fetch(`${orphan.url}/healthz`)).json()).toEqual({
        status: "ok",
        nats: "not-connected",
      });
    } finally {
      await orphan.close();
    }
  });

  it("tells a server that froze (504 timeout) from a connection that dropped mid-request (503, try again)", async () => {
    const server = await startNatsServer();
    const gateway = await startGateway(await settings(server.url, 500), { log: () => {} });
    const url = `${gateway.url}/v1/rpc`;
    const call = async () => {
      const body = { cluster: CLUSTER, agent: "rpcutil", action: "ping", nodes: ["n1"], timeout: 3 };
      const response = await fetch(url, await signedInit(url, body, keys.admin));
      const doc = (await response.json()) as { type: string };
      return { status: response.status, type: doc.type, retryAfter: response.headers.get("retry-after") };
    };
    try {
      // Frozen: the request's PING goes unanswered for the connect timeout.
      expect((await call()).status).toBe(200);
      server.signal("SIGSTOP");
      expect(await call()).toEqual({ status: 504, type: `${PROBLEM_BASE}timeout`, retryAfter: null });
      // Dropped: the server dies while the PING is out, and the client fails it as its socket closes.
      const out = call();
      await new Promise((resolve) => setTimeout(resolve, 100));
      server.signal("SIGKILL");
      expect(await out).toEqual({
        status: 503,
        type: `${PROBLEM_BASE}upstream-unavailable`,
        retryAfter: "1",
      });
    } finally {
      await gateway.close();
      await server.dispose();
    }
  });

  it("answers 503 while its server is down, and recovers once it is back", async () => {
    let server: NatsServer = await startNatsServer();
    const lonely = await startGateway(await settings(server.url, 500), { log: () => {} });
    const url = `${lonely.url}/v1/rpc`;
    // No broker listens on this server: a request to a named node goes out and times out unanswered.
    const call = async () =>
      fetch(
        url,
        await signedInit(
          url,
          { cluster: CLUSTER, agent: "rpcutil", action: "ping", nodes: ["n1"], timeout: 0.2 },
          keys.admin,
        ),
      );
    try {
      const first = await call();
      expect(first.status).toBe(200);
      expect(((await first.json()) as RpcResponse).no_reply).toEqual(["n1"]);
      await server.stop();
      const down = await call();
      expect(down.status).toBe(503);
      expect(((await down.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}upstream-unavailable`);
      server = await restartNatsServer(server);
      let back = 0;
      for (let attempt = 0; attempt < 40 && back !== 200; attempt++) {
        const res = await call();
        back = res.status;
        await res.arrayBuffer();
      }
      expect(back).toBe(200);
      expect(await (await fetch(`${lonely.url}/healthz`)).json()).toEqual({
        status: "ok",
        nats: "connected",
      });
    } finally {
      await lonely.close();
      await server.dispose();
    }
  });
});
