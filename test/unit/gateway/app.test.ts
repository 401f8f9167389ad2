// The HTTP surface that is decided before NATS is reached: routing, media types, body limits,
// validation, authentication outcomes, policy, clusters. The NATS source here refuses every acquire, so
// a test that reached it would see a 503 rather than pass by accident.
import { Ajv2020 } from "ajv/dist/2020.js";
import { beforeAll, describe, expect, it } from "vitest";
import { gatewayConfigFrom, parseClusters } from "../../../functions/gateway/config.ts";
import { type NatsSource, UpstreamUnavailable } from "../../../functions/gateway/nats.ts";
import { PROBLEM_BASE } from "../../../functions/gateway/problems.ts";
import {
  type AuditRecord,
  type AuthenticatedKey,
  createGateway,
  type GatewayAuth,
  type PolicyIntent,
} from "../../../functions/gateway.ts";
import { loadSigner } from "../../../lib/security/choria.ts";
import { testPki } from "../../support/pki.ts";

const KEY: AuthenticatedKey = {
  id: "ci",
  caller: "ci-team",
  scheme: "bearer",
  callerId: "choria=ci.mcollective",
  policy: { agents: ["rpcutil"], maxNodes: 2 },
};

// A stand-in for lib/security/http, with the same outcome shapes: these tests are about what the
// gateway does with each outcome.
const auth: GatewayAuth = {
  async authenticate(request) {
    const header = request.headers.get("authorization");
    if (header === null)
      return { ok: false, problem: "missing-credentials", detail: "no Authorization", status: 401 };
    if (header === "Bearer stale")
      return { ok: false, problem: "stale", detail: "expired 90 s ago", status: 401 };
    if (header === "Bearer replayed")
      return { ok: false, problem: "replay", detail: "nonce seen", status: 401 };
    if (header !== "Bearer good")
      return { ok: false, problem: "bad-signature", detail: "no match", status: 401 };
    return { ok: true, key: KEY };
  },
  authorize(key, intent: PolicyIntent) {
    const policy = key.policy as { agents: string[]; maxNodes: number };
    if (!policy.agents.includes(intent.agent))
      return { ok: false, detail: `agent ${intent.agent} is not allowed` };
    if (intent.nodes !== undefined && intent.nodes > policy.maxNodes)
      return { ok: false, detail: `${intent.nodes} nodes is over ${policy.maxNodes}` };
    return { ok: true };
  },
};

let acquired = 0;
const unreachable: NatsSource = {
  acquire: async () => {
    acquired++;
    throw new UpstreamUnavailable("NATS unreachable: connection refused");
  },
  status: () => "not-connected",
  close: async () => {},
};

const audit: AuditRecord[] = [];
let app: ReturnType<typeof createGateway>;

beforeAll(async () => {
  const pki = await testPki();
  const clusters = parseClusters("C1=mcollective,other");
  if (!clusters.ok) throw new Error(clusters.error);
  const config = gatewayConfigFrom({ clusters: clusters.clusters, maxBodyBytes: 2048, maxTimeoutMs: 30_000 });
  if (!config.ok) throw new Error(config.error);
  app = createGateway({
    config: config.config,
    signer: await loadSigner(pki.gateway),
    nats: unreachable,
    auth,
    audit: (record) => audit.push(record),
  });
});

const body = { agent: "rpcutil", action: "ping", cluster: "C1" };

function post(json: unknown, headers: Record<string, string> = {}) {
  return app.request("/v1/rpc", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer good", ...headers },
    body: typeof json === "string" ? json : JSON.stringify(json),
  });
}

async function problemOf(res: Response) {
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const doc = (await res.json()) as {
    type: string;
    status: number;
    detail: string;
    errors?: { field: string }[];
  };
  expect(doc.status).toBe(res.status);
  return { ...doc, kind: doc.type.slice(PROBLEM_BASE.length) };
}

describe("gateway routes", () => {
  it("/healthz answers without connecting", async () => {
    const before = acquired;
    const res = await app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", nats: "not-connected" });
    expect(acquired).toBe(before);
  });

  it("unknown paths and wrong methods are problem documents; 405 says what is allowed", async () => {
    const missing = await app.request("/v1/nope");
    expect(missing.status).toBe(404);
    expect((await problemOf(missing)).kind).toBe("not-found");
    const wrong = await app.request("/v1/rpc");
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get("allow")).toBe("POST");
    expect((await problemOf(wrong)).kind).toBe("method-not-allowed");
    const put = await app.request("/healthz", { method: "PUT" });
    expect(put.status).toBe(405);
  });

  it("/v1/openapi.json describes the request with the same schema that validates it", async () => {
    const res = await app.request("/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, unknown>;
      components: { schemas: Record<string, object> };
      "x-problem-types": Record<string, unknown>;
    };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(["/v1/rpc", "/v1/openapi.json", "/healthz"]);
    expect(Object.keys(doc["x-problem-types"])).toContain(`${PROBLEM_BASE}bad-signature`);
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(doc.components.schemas.RpcRequest!);
    expect(validate({ ...body, filter: { fact: ["country=nl"] }, limit: "10%" })).toBe(true);
    expect(validate({ ...body, filters: {} })).toBe(false);
    expect(validate({ agent: "rpcutil", action: "ping" })).toBe(false);
    expect(validate({ ...body, mode: "async" })).toBe(false);
  });
});

describe("POST /v1/rpc before NATS", () => {
  it("refuses other media types with 415", async () => {
    const res = await post(body, { "content-type": "text/plain" });
    expect(res.status).toBe(415);
    expect((await problemOf(res)).kind).toBe("unsupported-media-type");
  });

  it("refuses a body over the limit by its Content-Length, and one without a length while reading", async () => {
    const big = JSON.stringify({ ...body, data: { pad: "x".repeat(4000) } });
    const declared = await post(big);
    expect(declared.status).toBe(413);
    expect((await problemOf(declared)).kind).toBe("payload-too-large");

    const chunks = [new TextEncoder().encode(big.slice(0, 1500)), new TextEncoder().encode(big.slice(1500))];
    const streamed = await app.request("/v1/rpc", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer good" },
      body: new ReadableStream({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
  });

  it("maps each authentication refusal to its problem type and status", async () => {
    const cases: [Record<string, string>, string][] = [
      [{ authorization: "" }, "bad-signature"],
      [{ authorization: "Bearer stale" }, "stale"],
      [{ authorization: "Bearer replayed" }, "replay"],
      [{ authorization: "Bearer wrong" }, "bad-signature"],
    ];
    for (const [headers, kind] of cases) {
      const res = await post(body, headers);
      expect(res.status, kind).toBe(401);
      expect((await problemOf(res)).kind).toBe(kind);
    }
  });

  it("authenticates before reading the body: bad JSON from an unknown caller is a 401, not a 400", async () => {
    const res = await post("{not json", { authorization: "Bearer wrong" });
    expect(res.status).toBe(401);
  });

  it("invalid bodies are 400 with the field path", async () => {
    const notJson = await problemOf(await post("{not json"));
    expect(notJson).toMatchObject({ kind: "invalid-body", status: 400 });
    expect(notJson.errors?.[0]?.field).toBe("");

    const res = await post({ ...body, filter: { fact: [{ fact: "os", operator: "~~", value: "x" }] } });
    expect(res.status).toBe(400);
    const doc = await problemOf(res);
    expect(doc.kind).toBe("invalid-body");
    expect(doc.errors?.[0]?.field).toBe("filter.fact.0.operator");
    expect(doc.detail).toContain("filter.fact.0.operator");

    const slow = await problemOf(await post({ ...body, timeout: 45 }));
    expect(slow.errors?.[0]?.field).toBe("timeout");
  });

  it("unknown clusters and collectives are 404", async () => {
    const cluster = await post({ ...body, cluster: "C9" });
    expect(cluster.status).toBe(404);
    expect((await problemOf(cluster)).kind).toBe("unknown-cluster");
    const collective = await post({ ...body, collective: "elsewhere" });
    expect(collective.status).toBe(404);
    expect((await problemOf(collective)).kind).toBe("unknown-collective");
  });

  it("policy refusals are 403 and name the reason", async () => {
    const agent = await problemOf(await post({ ...body, agent: "demo", action: "echo" }));
    expect(agent).toMatchObject({ kind: "forbidden", status: 403, detail: "agent demo is not allowed" });
    const nodes = await problemOf(await post({ ...body, nodes: ["a", "b", "c"] }));
    expect(nodes).toMatchObject({ kind: "forbidden", detail: "3 nodes is over 2" });
  });

  it("a valid, allowed request reaches NATS, and an unreachable NATS is a 503 with Retry-After", async () => {
    const before = acquired;
    const res = await post(body);
    expect(acquired).toBe(before + 1);
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("1");
    expect((await problemOf(res)).kind).toBe("upstream-unavailable");
  });

  it("writes one audit record per decision, with who asked and why it was refused", async () => {
    audit.length = 0;
    await post({ ...body, agent: "demo", action: "echo" });
    await post(body, { authorization: "Bearer stale" });
    expect(audit).toEqual([
      expect.objectContaining({
        decision: "refused",
        reason: "forbidden",
        status: 403,
        key: "ci",
        caller: "ci-team",
        callerid: "choria=ci.mcollective",
        cluster: "C1",
        collective: "mcollective",
        agent: "demo",
        action: "echo",
      }),
      expect.objectContaining({ decision: "refused", reason: "stale", status: 401 }),
    ]);
    expect(audit[1]!.key).toBeUndefined();
  });
});
