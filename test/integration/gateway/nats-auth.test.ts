// The gateway logs in to a real nats-server configured for each auth kind, through the settings each
// runtime parses: flags (Node), environment only (Lambda's handler reads nothing else), and the Worker's
// variables into the WebSocket connection the Worker makes (undici's WebSocket standing in for workerd's
// on Node 20, which has none).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nkeys } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gatewaySettings } from "../../../functions/gateway-env.ts";
import { gatewayNatsSettings, gatewayOptionName } from "../../../functions/gateway-nats.ts";
import { nodeGateway } from "../../../functions/gateway-node.ts";
import { createCertificateAuthority, issueCertificate } from "../../../infra/pki.ts";
import { connectWebSocket } from "../../../lib/transport/mod.ts";
import { operatorMode } from "../../support/nats-jwt.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";
import { useGlobalWebSocket } from "../../support/websocket.ts";
import { memoryLog } from "../results/support.ts";

let dir: string;
let material: string[];
const servers: Record<string, NatsServer> = {};
/** Per auth kind: the variables (without their CHORIA_EDGE_GATEWAY_ prefix) that log in. */
const logins: Record<string, Record<string, string>> = {};
let tlsFiles: { ca: string; cert: string; key: string };

const nkey = nkeys.createUser();
const seed = new TextDecoder().decode(nkey.getSeed());

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "choria-edge-nats-auth-"));
  const pki = await testPki();
  material = [
    "--cert-pem",
    pki.gateway.certPem,
    "--key-pem",
    pki.gateway.keyPem,
    "--keys-json",
    '{"keys":[]}',
  ];
  const operator = operatorMode();
  const ca = await createCertificateAuthority("nats-auth test CA");
  const [server, client] = await Promise.all([
    issueCertificate(ca, "nats.test", { ipAddresses: ["127.0.0.1"], extraDnsNames: ["localhost"] }),
    issueCertificate(ca, "gateway.test"),
  ]);
  tlsFiles = { ca: join(dir, "ca.pem"), cert: join(dir, "client.pem"), key: join(dir, "client-key.pem") };
  await Promise.all([
    writeFile(tlsFiles.ca, ca.certPem),
    writeFile(tlsFiles.cert, client.certPem),
    writeFile(tlsFiles.key, client.keyPem, { mode: 0o600 }),
    writeFile(join(dir, "server.pem"), server.certPem),
    writeFile(join(dir, "server-key.pem"), server.keyPem, { mode: 0o600 }),
    writeFile(join(dir, "gw.creds"), operator.creds, { mode: 0o600 }),
  ]);
  const [users, token, jwt, mutual] = await Promise.all([
    startNatsServer({
      websocket: true,
      extraConfig: `authorization { users: [ { user: gw, password: "s3cret" }, { nkey: ${nkey.getPublicKey()} } ] }`,
    }),
    startNatsServer({ websocket: true, extraConfig: 'authorization { token: "t0ken" }' }),
    startNatsServer({ websocket: true, extraConfig: operator.serverConfig }),
    startNatsServer({
      extraConfig: `tls { cert_file: "${join(dir, "server.pem")}", key_file: "${join(dir, "server-key.pem")}", ca_file: "${tlsFiles.ca}", verify: true }`,
    }),
  ]);
  Object.assign(servers, { userpass: users, nkey: users, token, creds: jwt, credentials: jwt, tls: mutual });
  Object.assign(logins, {
    userpass: { NATS_USER: "gw", NATS_PASSWORD: "s3cret" },
    nkey: { NATS_NKEY_SEED: seed },
    token: { NATS_TOKEN: "t0ken" },
    creds: { NATS_CREDS: operator.creds },
    credentials: { NATS_CREDENTIALS: join(dir, "gw.creds") },
    tls: { NATS_TLS_CA: tlsFiles.ca, NATS_TLS_CERT: tlsFiles.cert, NATS_TLS_KEY: tlsFiles.key },
  });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(Object.values(servers).map((s) => s.dispose()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const asFlags = (vars: Record<string, string>) =>
  Object.entries(vars).flatMap(([name, value]) => [`--${name.toLowerCase().replaceAll("_", "-")}`, value]);
const asEnv = (vars: Record<string, string>) =>
  Object.fromEntries(Object.entries(vars).map(([name, value]) => [`CHORIA_EDGE_GATEWAY_${name}`, value]));

/** Starts the Node gateway's NATS side from these settings and flushes one round trip through it. */
async function nodeLogin(argv: string[], env: Record<string, string>): Promise<void> {
  const parsed = await gatewaySettings([...material, "--connect-timeout", "3000", ...argv], env);
  if (!parsed.ok) throw new Error("error" in parsed ? parsed.error : "help");
  const gateway = await nodeGateway(parsed.settings, { log: memoryLog(), connectionName: "auth-test" });
  try {
    const lease = await gateway.nats.acquire();
    await lease.bus.flush();
    await lease.release();
  } finally {
    await gateway.nats.close();
    gateway.audit.close();
  }
}

describe.each(["userpass", "nkey", "token", "creds", "credentials", "tls"])("NATS login by %s", (kind) => {
  const url = () => (kind === "tls" ? `tls://127.0.0.1:${servers[kind]?.port}` : servers[kind]?.url);

  it("on Node, from flags", async () => {
    await nodeLogin(["--nats-servers", url() ?? "", ...asFlags(logins[kind] ?? {})], {});
  });

  it("on Lambda, from the environment alone", async () => {
    await nodeLogin([], { CHORIA_EDGE_GATEWAY_NATS_SERVERS: url() ?? "", ...asEnv(logins[kind] ?? {}) });
  });

  it("is refused by the server without it", async () => {
    // TLS keeps its CA, so that what is missing is the client certificate alone.
    const kept = kind === "tls" ? ["--nats-tls-ca", tlsFiles.ca] : [];
    // The server closes a TLS connection without a client certificate; nats.js tries again until the
    // connect timeout.
    await expect(nodeLogin(["--nats-servers", url() ?? "", ...kept], {})).rejects.toThrow(
      kind === "tls" ? /NATS unreachable: no connection within/ : /NATS unreachable: Authorization Violation/,
    );
  });
});

describe("NATS login from a Worker's variables, over the websocket listener", () => {
  useGlobalWebSocket();

  it.each(["userpass", "nkey", "token", "creds"])("by %s", async (kind) => {
    const vars: Record<string, string> = {
      ...asEnv(logins[kind] ?? {}),
      CHORIA_EDGE_GATEWAY_NATS_SERVERS: servers[kind]?.wsUrl ?? "",
    };
    const settings = gatewayNatsSettings((flag) => vars[gatewayOptionName(flag, "workers")], "workers");
    if ("error" in settings) throw new Error(settings.error);
    const bus = await connectWebSocket({
      servers: settings.natsServers,
      name: "auth-test-workers",
      auth: settings.natsAuth,
      timeoutMs: 3000,
    });
    await bus.flush();
    await bus.close();
  });

  it("refuses the client certificate and the credentials file before connecting", () => {
    for (const kind of ["tls", "credentials"]) {
      const vars: Record<string, string> = {
        ...asEnv(logins[kind] ?? {}),
        CHORIA_EDGE_GATEWAY_NATS_SERVERS: "wss://127.0.0.1:1",
      };
      expect(gatewayNatsSettings((flag) => vars[gatewayOptionName(flag, "workers")], "workers")).toEqual({
        error: expect.stringMatching(/is set: a Worker/),
      });
    }
  });
});
