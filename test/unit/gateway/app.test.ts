// The HTTP surface that is decided before NATS is reached: routing, media types, body limits,
// validation, authentication outcomes, policy, clusters. The NATS source here refuses every acquire, so
// a test that reached it would see a 503 rather than pass by accident.
import { Ajv2020 } from "ajv/dist/2020.js";
import { beforeAll, describe, expect, it } from "vitest";
import { createGateway } from "../../../lib/gateway/app.ts";
import { gatewayAuthFromKeys } from "../../../lib/gateway/auth.ts";
import { gatewayConfigFrom, parseClusters } from "../../../lib/gateway/config.ts";
import { type NatsSource, UpstreamUnavailable } from "../../../lib/gateway/nats.ts";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { loadSigner } from "../../../lib/security/choria.ts";
import {
  type AuditEvent,
  generateHttpKey,
  type Policy,
  type SigningKey,
  signHttpRequest,
} from "../../../lib/security/http/mod.ts";
import { testPki } from "../../support/pki.ts";

const POLICY: Policy = {
  clusters: ["C1"],
  collectives: ["*"],
  agents: ["rpcutil"],
  actions: ["rpcutil#*"],
  maxNodes: 2,
  maxTimeoutSeconds: 20,
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

const audit: AuditEvent[] = [];
let app: ReturnType<typeof createGateway>;
let signing: SigningKey;
let impostor: SigningKey;
let bearer: SigningKey;

beforeAll(async () => {
  const pki = await testPki();
  const [ed, other, token] = await Promise.all([
    generateHttpKey({ id: "ci", caller: "ci-team", scheme: "ed25519", policy: POLICY }),
    generateHttpKey({ id: "ci", caller: "ci-team", scheme: "ed25519", policy: POLICY }),
    generateHttpKey({ id: "ops-token", caller: "ops", scheme: "bearer", policy: POLICY }),
  ]);
  const asSigningKey = (file: typeof ed.keyFile): SigningKey =>
    file.scheme === "bearer"
      ? { id: file.id, scheme: "bearer", secret: file.secret! }
      : { id: file.id, scheme: "ed25519", privateKey: file.privateKey! };
  signing = asSigningKey(ed.keyFile);
  impostor = asSigningKey(other.keyFile);
  bearer = asSigningKey(token.keyFile);
  const auth = await gatewayAuthFromKeys(JSON.stringify({ keys: [ed.config, token.config] }));
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
  const proxied = gatewayConfigFrom({ clusters: clusters.clusters, publicUrl: "https://gw.example.com" });
  if (!proxied.ok) throw new Error(proxied.error);
  behindProxy = createGateway({
    config: proxied.config,
    signer: await loadSigner(pki.gateway),
    nats: unreachable,
    auth,
  });
});

let behindProxy: ReturnType<typeof createGateway>;

const body = { agent: "rpcutil", action: "ping", cluster: "C1" };

const URL_RPC = "http://localhost/v1/rpc";

/** Signs with `key` (ed25519 by default) and posts; `tamper` changes the body after signing. */
async function post(
  json: unknown,
  options: { key?: SigningKey; created?: number; headers?: Record<string, string>; tamper?: string } = {},
) {
  const body = typeof json === "string" ? json : JSON.stringify(json);
  const headers = await signHttpRequest({
    method: "POST",
    url: URL_RPC,
    headers: { "content-type": "application/json", ...options.headers },
    body,
    key: options.key ?? signing,
    ...(options.created === undefined ? {} : { created: options.created }),
  });
  return app.request(URL_RPC, { method: "POST", headers, body: options.tamper ?? body });
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

  it("answers /docs without a bundled reference (Workers) with a problem that points at the document", async () => {
    const res = await app.request("/docs");
    expect(res.status).toBe(404);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/\/v1\/openapi\.json/);
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
    expect(Object.keys(doc.paths)).toEqual([
      "/v1/rpc",
      "/v1/hooks/{name}",
      "/v1/jobs",
      "/v1/jobs/{id}",
      "/v1/jobs/{id}/events",
      "/v1/openapi.json",
      "/healthz",
    ]);
    expect(Object.keys(doc["x-problem-types"])).toContain(`${PROBLEM_BASE}bad-signature`);
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile(doc.components.schemas.RpcRequest!);
    expect(validate({ ...body, filter: { fact: ["country=nl"] }, limit: "10%" })).toBe(true);
    expect(validate({ ...body, filters: {} })).toBe(false);
    expect(validate({ agent: "rpcutil", action: "ping" })).toBe(false);
    expect(validate({ ...body, mode: "later" })).toBe(false);
    expect(validate({ ...body, mode: "async", callback: { kind: "lambda", function_name: "f" } })).toBe(true);
  });
});

describe("POST /v1/rpc before NATS", () => {
  it("refuses other media types with 415", async () => {
    const res = await post(body, { headers: { "content-type": "text/plain" } });
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
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${(bearer as { secret: string }).secret}`,
      },
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

  it("reads an endless refused body only up to a bound, then hangs up on it", async () => {
    const chunk = new Uint8Array(64 * 1024);
    let pulled = 0;
    let hangUp = () => {};
    const hungUp = new Promise<void>((resolve) => {
      hangUp = resolve;
    });
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
      cancel() {
        hangUp();
      },
    });
    const res = await app.request("/v1/rpc", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: endless,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    await hungUp;
    expect(pulled).toBeGreaterThan(1024 * 1024);
    expect(pulled).toBeLessThan(10 * 1024 * 1024);
  });

  it("accepts an ed25519 signature and a bearer token: a valid request goes on to NATS", async () => {
    for (const key of [signing, bearer]) {
      const res = await post(body, { key });
      expect(res.status, key.scheme).toBe(503);
    }
  });

  it("takes a signature over @authority and @path without @query when the URL has none", async () => {
    const text = JSON.stringify(body);
    const signFor = (url: string) =>
      signHttpRequest({
        method: "POST",
        url,
        headers: { "content-type": "application/json" },
        body: text,
        key: signing,
        components: ["@method", "@authority", "@path", "content-digest", "content-type"],
      });
    const plain = await app.request(URL_RPC, { method: "POST", headers: await signFor(URL_RPC), body: text });
    expect(plain.status).toBe(503);
    const queried = `${URL_RPC}?trace=1`;
    const doc = await problemOf(
      await app.request(queried, { method: "POST", headers: await signFor(queried), body: text }),
    );
    expect(doc).toMatchObject({ kind: "insufficient-coverage", status: 400 });
    expect(doc.detail).toBe("sig1: must cover @query (or @target-uri in place of @query)");
  });

  it("maps each authentication refusal to its problem type and status", async () => {
    const expectProblem = async (res: Response, kind: string, status: number) => {
      expect(res.status, kind).toBe(status);
      // The keys here are one ed25519 key and one bearer token.
      expect(res.headers.get("www-authenticate"), kind).toBe(
        'Signature realm="choria-edge", algs="ed25519", Bearer realm="choria-edge"',
      );
      expect((await problemOf(res)).kind).toBe(kind);
    };
    await expectProblem(
      await app.request(URL_RPC, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      }),
      "missing-credentials",
      401,
    );
    await expectProblem(await post(body, { key: impostor }), "bad-signature", 401);
    await expectProblem(
      await post(body, { tamper: JSON.stringify({ ...body, agent: "demo" }) }),
      "digest-mismatch",
      401,
    );
    await expectProblem(await post(body, { created: Math.floor(Date.now() / 1000) - 3600 }), "stale", 401);
    await expectProblem(
      await post(body, {
        key: {
          id: "nobody",
          scheme: "ed25519",
          privateKey: (signing as { privateKey: JsonWebKey }).privateKey,
        },
      }),
      "unknown-key",
      401,
    );
    await expectProblem(
      await post(body, { key: { id: "x", scheme: "bearer", secret: "not-a-known-token-not-a-known-token" } }),
      "unknown-key",
      401,
    );
  });

  it("a signed request is accepted once: the same signature again is a replay", async () => {
    const text = JSON.stringify(body);
    const headers = await signHttpRequest({
      method: "POST",
      url: URL_RPC,
      headers: { "content-type": "application/json" },
      body: text,
      key: signing,
    });
    expect((await app.request(URL_RPC, { method: "POST", headers, body: text })).status).toBe(503);
    audit.length = 0;
    const again = await app.request(URL_RPC, { method: "POST", headers, body: text });
    expect(again.status).toBe(401);
    expect((await problemOf(again)).kind).toBe("replay");
    expect(audit).toEqual([expect.objectContaining({ reason: "replay", key: "ci", caller: "ci-team" })]);
  });

  it("behind a proxy, checks the signature against the public URL the caller signed", async () => {
    const text = JSON.stringify(body);
    const signFor = (url: string) =>
      signHttpRequest({
        method: "POST",
        url,
        headers: { "content-type": "application/json" },
        body: text,
        key: signing,
      });
    const publicSigned = await behindProxy.request(URL_RPC, {
      method: "POST",
      headers: await signFor("https://gw.example.com/v1/rpc"),
      body: text,
    });
    expect(publicSigned.status).toBe(503);
    const internalSigned = await behindProxy.request(URL_RPC, {
      method: "POST",
      headers: await signFor(URL_RPC),
      body: text,
    });
    expect(internalSigned.status).toBe(401);
  });

  it("authenticates before reading the body: bad JSON from an unknown caller is a 401, not a 400", async () => {
    const res = await post("{not json", { key: impostor });
    expect(res.status).toBe(401);
  });

  it("invalid bodies are 400 with the field path", async () => {
    const notJson = await problemOf(await post('{"password": hunter2}'));
    expect(notJson).toMatchObject({ kind: "invalid-body", status: 400 });
    expect(notJson.errors?.[0]?.field).toBe("");
    // The parser's message quotes the body; the problem (and so the audit line) does not.
    expect(JSON.stringify(notJson)).not.toContain("hunter2");

    const res = await post({ ...body, filter: { fact: [{ fact: "os", operator: "~~", value: "x" }] } });
    expect(res.status).toBe(400);
    const doc = await problemOf(res);
    expect(doc.kind).toBe("invalid-body");
    expect(doc.errors?.[0]?.field).toBe("filter.fact.0.operator");
    expect(doc.detail).toContain("filter.fact.0.operator");

    const slow = await problemOf(await post({ ...body, timeout: 45 }));
    expect(slow.errors?.[0]?.field).toBe("timeout");
  });

  it("a filter regex that is not RE2 is a 400 invalid-body naming the field", async () => {
    const res = await post({ ...body, filter: { identity: ["node1", "/(node)\\1/"] } });
    expect(res.status).toBe(400);
    const doc = await problemOf(res);
    expect(doc.kind).toBe("invalid-body");
    expect(doc.errors?.[0]?.field).toBe("filter.identity.1");
    expect(doc.detail).toContain("RE2");
  });

  it("refuses a body nested deeper than 64 levels as invalid-body, without reaching NATS", async () => {
    // Objects and arrays inside each other, `depth` levels in all: the body, `data`, then arrays.
    const nested = (depth: number) =>
      `{"agent":"rpcutil","action":"ping","cluster":"C1","data":{"x":${"[".repeat(depth - 2)}${"]".repeat(depth - 2)}}}`;
    audit.length = 0;
    const before = acquired;
    for (const depth of [65, 900]) {
      const doc = await problemOf(await post(nested(depth)));
      expect(doc).toMatchObject({ kind: "invalid-body", status: 400 });
      expect(doc.detail).toContain("deeper than 64 levels");
      expect(doc.errors?.[0]?.field).toBe("");
    }
    expect(acquired).toBe(before);
    expect(audit.map((e) => [e.reason, e.key])).toEqual([
      ["invalid-body", "ci"],
      ["invalid-body", "ci"],
    ]);
    // At the limit the body is fine and goes on to NATS (unreachable here: 503).
    expect((await post(nested(64))).status).toBe(503);
    expect(acquired).toBe(before + 1);
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
    expect(agent).toMatchObject({
      kind: "forbidden",
      status: 403,
      detail: "agent demo is not in the key's agents",
    });
    const nodes = await problemOf(await post({ ...body, nodes: ["a", "b", "c", "a"] }));
    expect(nodes).toMatchObject({ kind: "forbidden", detail: "3 nodes is over the key's maxNodes of 2" });
    const broadcast = await problemOf(await post({ ...body, mode: "broadcast" }));
    expect(broadcast).toMatchObject({ kind: "forbidden", detail: expect.stringContaining("allowBroadcast") });
  });

  it("holds discovery_timeout to the key's maxTimeoutSeconds, as it does timeout", async () => {
    const before = acquired;
    expect(await problemOf(await post({ ...body, timeout: 25 }))).toMatchObject({
      kind: "forbidden",
      status: 403,
      detail: "a timeout of 25s is over the key's maxTimeoutSeconds of 20",
    });
    expect(await problemOf(await post({ ...body, discovery_timeout: 25 }))).toMatchObject({
      kind: "forbidden",
      status: 403,
      detail: "a discovery_timeout of 25s is over the key's maxTimeoutSeconds of 20",
    });
    expect(acquired).toBe(before);
    // Named nodes are not discovered: their discovery_timeout is never waited for.
    expect((await post({ ...body, nodes: ["a"], discovery_timeout: 25 })).status).toBe(503);
    expect((await post({ ...body, discovery_timeout: 20 })).status).toBe(503);
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
    await post(body, { created: Math.floor(Date.now() / 1000) - 3600 });
    expect(audit).toEqual([
      expect.objectContaining({
        decision: "refused",
        reason: "forbidden",
        status: 403,
        key: "ci",
        caller: "ci-team",
        scheme: "ed25519",
        callerid: "choria=ci.mcollective",
        method: "POST",
        path: "/v1/rpc",
        cluster: "C1",
        collective: "mcollective",
        agent: "demo",
        action: "echo",
        nonce: expect.any(String),
      }),
      expect.objectContaining({
        decision: "refused",
        reason: "stale",
        status: 401,
        key: "ci",
        caller: "ci-team",
      }),
    ]);
  });
});

describe("a failure inside the gateway", () => {
  it("is a 500 internal whose detail says nothing of the error; the error itself goes to the log", async () => {
    const secret = "ECONNREFUSED 10.1.2.3:4222 reading /etc/choria-edge/secret.pem";
    const logged: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
    const events: AuditEvent[] = [];
    const clusters = parseClusters("C1=mcollective");
    if (!clusters.ok) throw new Error(clusters.error);
    const config = gatewayConfigFrom({ clusters: clusters.clusters });
    if (!config.ok) throw new Error(config.error);
    const token = await generateHttpKey({ id: "t", caller: "ops", scheme: "bearer", policy: POLICY });
    const failing = createGateway({
      config: config.config,
      signer: await loadSigner((await testPki()).gateway),
      nats: {
        acquire: async () => {
          throw new Error(secret);
        },
        status: () => "not-connected",
        close: async () => {},
      },
      auth: await gatewayAuthFromKeys(JSON.stringify({ keys: [token.config] })),
      audit: (event) => events.push(event),
      log: (level, msg, fields = {}) => logged.push({ level, msg, fields }),
    });
    const res = await failing.request(URL_RPC, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token.keyFile.secret}` },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(500);
    const doc = await problemOf(res);
    expect(doc.kind).toBe("internal");
    expect(JSON.stringify(doc)).not.toContain("ECONNREFUSED");
    expect(JSON.stringify(doc)).not.toContain("secret.pem");
    expect(events).toEqual([expect.objectContaining({ decision: "refused", reason: "internal", key: "t" })]);
    expect(JSON.stringify(events)).not.toContain("secret.pem");
    expect(logged).toEqual([
      expect.objectContaining({ level: "error", fields: expect.objectContaining({ error: secret }) }),
    ]);
  });
});

describe("callback secrets and the seal key", () => {
  const CALLBACK = {
    kind: "url",
    url: "https://hooks.example.com/ci/done",
    secret: `whsec_${btoa("k".repeat(24))}`,
  };
  const SEAL_KEY = btoa("0123456789abcdef0123456789abcdef");

  async function gatewayWith(options: { sealKey?: string; keyCallback?: unknown }) {
    const key = await generateHttpKey({
      id: "hooked",
      caller: "ci",
      scheme: "bearer",
      policy: { ...POLICY, callbackUrls: ["https://hooks.example.com/ci/"] },
    });
    const clusters = parseClusters("C1=mcollective");
    if (!clusters.ok) throw new Error(clusters.error);
    const config = gatewayConfigFrom({
      clusters: clusters.clusters,
      ...(options.sealKey === undefined ? {} : { callbackSealKey: options.sealKey }),
    });
    if (!config.ok) throw new Error(config.error);
    const keys = {
      keys: [{ ...key.config, ...(options.keyCallback ? { callback: options.keyCallback } : {}) }],
    };
    const gateway = createGateway({
      config: config.config,
      signer: await loadSigner((await testPki()).gateway),
      nats: unreachable,
      auth: await gatewayAuthFromKeys(JSON.stringify(keys)),
      jobs: { store: () => Promise.reject(new Error("no job store in this test")) },
    });
    return { gateway, token: key.keyFile.secret! };
  }

  it("a gateway without a seal key refuses to start with a key whose callback carries a secret", async () => {
    await expect(gatewayWith({ keyCallback: CALLBACK })).rejects.toThrow(/key hooked: .*callbackSealKey/);
    await expect(gatewayWith({ keyCallback: CALLBACK, sealKey: SEAL_KEY })).resolves.toBeDefined();
    const { secret: _secret, ...unsigned } = CALLBACK;
    await expect(gatewayWith({ keyCallback: unsigned })).resolves.toBeDefined();
  });

  it("and refuses a request's callback secret as invalid-body (400) before anything is sent", async () => {
    const { gateway, token } = await gatewayWith({});
    const before = acquired;
    const res = await gateway.request(URL_RPC, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ ...body, nodes: ["n1"], mode: "async", callback: CALLBACK }),
    });
    expect(res.status).toBe(400);
    const doc = await problemOf(res);
    expect(doc.kind).toBe("invalid-body");
    expect(doc.errors?.map((e) => e.field)).toEqual(["callback.secret"]);
    expect(JSON.stringify(doc)).not.toContain(CALLBACK.secret);
    expect(acquired).toBe(before);
  });
});
