// `choria-edge doctor` against a real nats-server (JetStream, websocket listener, a user and password):
// a configuration that works passes every check, and each check fails, with what to do, when its part
// of the configuration is wrong.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CheckResult, runDoctor } from "../../../cli/doctor.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { type TestPki, testPki } from "../../support/pki.ts";
import { useGlobalWebSocket } from "../../support/websocket.ts";
import { CLUSTER, type TestKeys, testKeys } from "../gateway/support.ts";

let dir: string;
let server: NatsServer;
let bare: NatsServer;
let pki: TestPki;
let keys: TestKeys;

const TRIGGERS = JSON.stringify({
  triggers: [
    {
      name: "push",
      verify: { scheme: "github", secrets_env: ["HOOK_SECRET"] },
      policy: { clusters: [CLUSTER], collectives: ["*"], agents: ["rpcutil"], actions: ["rpcutil#*"] },
      request: { cluster: CLUSTER, agent: "rpcutil", action: "ping" },
    },
  ],
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "choria-edge-doctor-"));
  const users = 'authorization { users: [ { user: gw, password: "s3cret" } ] }';
  [pki, keys, server, bare] = await Promise.all([
    testPki(),
    testKeys(),
    startNatsServer({ jetstream: true, websocket: true, extraConfig: users }),
    startNatsServer({}),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([server?.dispose(), bare?.dispose()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The checks of every target, in order, all passing. */
const EVERY_RUNTIME_OK = ["certificate", "keys", "callerid", "triggers", "nats", "buckets"].map((check) => [
  check,
  "ok",
]);

/** Runs doctor; its checks by name, and the exit code. */
async function doctor(argv: string[], env: Record<string, string> = {}) {
  let stdout = "";
  const io = { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: () => true } };
  const code = await runDoctor([...argv, "--json", "--timeout", "2000"], io, env);
  const report = JSON.parse(stdout) as { ok: boolean; checks: CheckResult[] };
  return { code, report, check: (name: string) => report.checks.find((c) => c.check === name) };
}

/** The check failed, and its line says this (what is wrong or what to do). */
function expectFail(run: { check(name: string): CheckResult | undefined }, name: string, says: string) {
  expect(run.check(name)).toMatchObject({ status: "fail", detail: expect.stringContaining(says) });
}

/** The gateway's flags; an override of undefined leaves that flag out. */
function nodeArgs(overrides: Record<string, string | undefined> = {}): string[] {
  const options: Record<string, string | undefined> = {
    "nats-servers": server.url,
    "nats-user": "gw",
    "nats-password": "s3cret",
    "cert-pem": pki.gateway.certPem,
    "key-pem": pki.gateway.keyPem,
    "keys-json": keys.json,
    "triggers-text": TRIGGERS,
    jobs: "on",
    "replay-store": "kv",
    ...overrides,
  };
  return Object.entries(options).flatMap(([flag, value]) =>
    value === undefined ? [] : [`--${flag}`, value],
  );
}

describe("choria-edge doctor --target node", () => {
  it("passes every check on a configuration that works, and says what it found", async () => {
    const { code, report, check } = await doctor(nodeArgs());
    expect(report.checks.map((c) => [c.check, c.status])).toEqual(EVERY_RUNTIME_OK);
    expect(code).toBe(0);
    expect(check("certificate")?.detail).toContain("gateway.privileged.mcollective, key matches");
    expect(check("buckets")?.detail).toMatch(
      /jobs choria_edge_jobs missing, made on first use.*replay.*data/,
    );
  });

  it("reads the same CHORIA_EDGE_GATEWAY_* variables as the Lambda handler", async () => {
    const env = Object.fromEntries(
      Object.entries({ "nats-servers": server.url, "nats-user": "gw", "nats-password": "s3cret" }).map(
        ([flag, value]) => [`CHORIA_EDGE_GATEWAY_${flag.toUpperCase().replaceAll("-", "_")}`, value],
      ),
    );
    const withoutNats = nodeArgs({
      "nats-servers": undefined,
      "nats-user": undefined,
      "nats-password": undefined,
    });
    const { check } = await doctor(["--target", "lambda", ...withoutNats], env);
    expect(check("nats")?.status).toBe("ok");
  });

  it("fails a key that is not the certificate's, and an expired certificate", async () => {
    const mismatch = await doctor(nodeArgs({ "key-pem": pki.client.keyPem }));
    expect(mismatch.code).toBe(1);
    expectFail(mismatch, "certificate", "does not belong");
    const expired = await doctor(
      nodeArgs({ "cert-pem": pki.expired.certPem, "key-pem": pki.expired.keyPem }),
    );
    expect(expired.check("certificate")).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/expired on .*issue a new one/),
    });
    const missing = await doctor(nodeArgs({ cert: join(dir, "absent.pem"), "cert-pem": undefined }));
    expectFail(missing, "certificate", "absent.pem");
  });

  it("fails a keys document that does not parse, and a key with no caller id to derive", async () => {
    const broken = await doctor(nodeArgs({ "keys-json": "{" }));
    expectFail(broken, "keys", "fix the JSON");
    const config = JSON.parse(keys.json) as { keys: Record<string, unknown>[] };
    const privileged = { ...config.keys[0], id: "deploy.privileged", callerId: undefined };
    const underived = await doctor(nodeArgs({ "keys-json": JSON.stringify({ keys: [privileged] }) }));
    expect(underived.check("keys")?.status).toBe("ok");
    expectFail(underived, "callerid", "would look privileged");
    expect(underived.code).toBe(1);
  });

  it("fails a trigger file that does not parse", async () => {
    expectFail(
      await doctor(nodeArgs({ "triggers-text": "triggers: [ { name: 1 } ]" })),
      "triggers",
      "fix the trigger file",
    );
  });

  it("fails wrong credentials, an unreachable server, and a server without JetStream for the buckets", async () => {
    const wrong = await doctor(nodeArgs({ "nats-password": "wrong" }));
    expectFail(wrong, "nats", "Authorization Violation");
    expect(wrong.check("buckets")?.status).toBe("warn");
    const closed = await doctor(nodeArgs({ "nats-servers": "nats://127.0.0.1:1" }));
    expectFail(closed, "nats", "check the URL");
    const noJetStream = await doctor(
      nodeArgs({ "nats-servers": bare.url, "nats-user": undefined, "nats-password": undefined }),
    );
    expect(noJetStream.check("nats")?.status).toBe("ok");
    expectFail(noJetStream, "buckets", "enable JetStream");
  });
});

describe("choria-edge doctor --target workers", () => {
  useGlobalWebSocket();

  /** wrangler.toml's text; the NATS password and the certificate in an env file, the other secrets in the environment. */
  async function workers(toml: string, secrets: Record<string, string>) {
    const config = join(dir, `wrangler-${Math.random().toString(36).slice(2)}.toml`);
    const envFile = `${config}.vars`;
    await writeFile(config, toml);
    // As wrangler's .dev.vars holds them: a PEM in double quotes over several lines.
    const { CHORIA_EDGE_GATEWAY_CERT_PEM: certPem, ...others } = secrets;
    const certLine = certPem === undefined ? "" : `CHORIA_EDGE_GATEWAY_CERT_PEM="${certPem}"\n`;
    await writeFile(envFile, `CHORIA_EDGE_GATEWAY_NATS_PASSWORD="s3cret"\n${certLine}`);
    return doctor(["--target", "workers", "--wrangler-config", config, "--env-file", envFile], others);
  }

  const toml = (vars: string, binding = true) => `name = "gw"
main = "functions/cloudflare.ts"
[vars]
${vars}
${binding ? '[[durable_objects.bindings]]\nname = "GATEWAY_CONNECTION"\nclass_name = "GatewayConnection"\n' : ""}`;
  const secrets = () => ({
    CHORIA_EDGE_GATEWAY_CERT_PEM: pki.gateway.certPem,
    CHORIA_EDGE_GATEWAY_KEY_PEM: pki.gateway.keyPem,
    CHORIA_EDGE_GATEWAY_KEYS_JSON: keys.json,
  });

  it("passes a Worker configuration that works: wrangler.toml's vars, the secrets, the websocket URL", async () => {
    const vars = `CHORIA_EDGE_GATEWAY_NATS_SERVERS = "${server.wsUrl}"\nCHORIA_EDGE_GATEWAY_NATS_USER = "gw"\nCHORIA_EDGE_GATEWAY_JOBS = "on"`;
    const { code, report } = await workers(toml(vars), secrets());
    expect(report.checks.map((c) => [c.check, c.status])).toEqual([
      ["wrangler", "ok"],
      ["durable-obj", "ok"],
      ["settings", "ok"],
      ...EVERY_RUNTIME_OK,
    ]);
    expect(code).toBe(0);
  });

  it("fails a missing Durable Object binding, a missing secret, a nats:// URL and a client certificate", async () => {
    const vars = `CHORIA_EDGE_GATEWAY_NATS_SERVERS = "${server.wsUrl}"\nCHORIA_EDGE_GATEWAY_NATS_USER = "gw"`;
    const { CHORIA_EDGE_GATEWAY_CERT_PEM: _, ...withoutCert } = secrets();
    const unbound = await workers(toml(vars, false), withoutCert);
    expectFail(unbound, "durable-obj", "[[durable_objects.bindings]]");
    expectFail(unbound, "certificate", "wrangler secret put CHORIA_EDGE_GATEWAY_CERT_PEM");
    const tcp = await workers(toml(`CHORIA_EDGE_GATEWAY_NATS_SERVERS = "${server.url}"`), secrets());
    expectFail(tcp, "nats", "is not ws:// or wss://");
    const cert = await workers(toml(`${vars}\nCHORIA_EDGE_GATEWAY_NATS_TLS_CERT = "/etc/gw.pem"`), secrets());
    expectFail(cert, "nats", "cannot present a TLS client certificate");
    const nodeOnly = await workers(toml(`${vars}\nCHORIA_EDGE_GATEWAY_KEYS = "/etc/keys.json"`), secrets());
    expectFail(nodeOnly, "settings", "CHORIA_EDGE_GATEWAY_KEYS is ignored by a Worker: put the JSON text");
    expect(cert.code).toBe(1);
  });
});
