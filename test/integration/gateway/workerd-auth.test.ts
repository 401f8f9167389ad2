// The real Worker in workerd (`wrangler dev`) logs in to a nats-server that asks for a user and password
// or an nkey on its websocket listener, from the variables an operator sets; and refuses to start, saying
// why, when a setting names a TLS client certificate it could never present.
import { createUser } from "@nats-io/nkeys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";
import { startWranglerDev, type WranglerDev } from "../../workerd/wrangler-dev.ts";
import { CLUSTER, signedInit, type TestKeys, testKeys } from "./support.ts";

let server: NatsServer;
let keys: TestKeys;
let worker: WranglerDev;
let refusing: WranglerDev;
// The nkey login signs with the Worker's stand-in for @nats-io/nkeys (wrangler.toml's [alias]).
let nkeyWorker: WranglerDev;
const nkeyUser = createUser();

beforeAll(async () => {
  const pki = await testPki();
  [server, keys] = await Promise.all([
    startNatsServer({
      websocket: true,
      extraConfig: `authorization { users: [ { user: gw, password: "s3cret" }, { nkey: ${nkeyUser.getPublicKey()} } ] }`,
    }),
    testKeys(),
  ]);
  const vars = {
    CHORIA_EDGE_GATEWAY_NATS_SERVERS: server.wsUrl ?? "",
    CHORIA_EDGE_GATEWAY_CLUSTERS: `${CLUSTER}=mcollective`,
    CHORIA_EDGE_GATEWAY_NATS_CONNECTION: "per-request",
    CHORIA_EDGE_GATEWAY_CONNECT_TIMEOUT: "3000",
    CHORIA_EDGE_GATEWAY_CERT_PEM: pki.gateway.certPem,
    CHORIA_EDGE_GATEWAY_KEY_PEM: pki.gateway.keyPem,
    CHORIA_EDGE_GATEWAY_KEYS_JSON: keys.json,
    CHORIA_EDGE_GATEWAY_NATS_USER: "gw",
    CHORIA_EDGE_GATEWAY_NATS_PASSWORD: "s3cret",
  };
  // One after the other: two workerd start-ups at once crowd a two-core machine.
  worker = await startWranglerDev(vars);
  refusing = await startWranglerDev(
    { ...vars, CHORIA_EDGE_GATEWAY_NATS_TLS_CERT: "/etc/gw.pem" },
    60_000,
    (status) => status === 500,
  );
  const {
    CHORIA_EDGE_GATEWAY_NATS_USER: _,
    CHORIA_EDGE_GATEWAY_NATS_PASSWORD: __,
    ...withoutPassword
  } = vars;
  nkeyWorker = await startWranglerDev({
    ...withoutPassword,
    CHORIA_EDGE_GATEWAY_NATS_NKEY_SEED: new TextDecoder().decode(nkeyUser.getSeed()),
  });
}, 200_000);

afterAll(async () => {
  await Promise.allSettled([worker?.stop(), refusing?.stop(), nkeyWorker?.stop()]);
  await server?.dispose();
});

async function ping(dev: WranglerDev): Promise<Response> {
  const url = `${dev.url}/v1/rpc`;
  const body = { cluster: CLUSTER, agent: "rpcutil", action: "ping", nodes: ["n1"], timeout: 0.3 };
  return fetch(url, await signedInit(url, body, keys.admin));
}

describe("the Worker's NATS login in workerd", () => {
  it("logs in with a user and password over the websocket listener", async () => {
    const res = await ping(worker);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { summary: { no_reply: number } }).summary).toMatchObject({ no_reply: 1 });
  });

  it("logs in with an nkey seed, signing the server's nonce", async () => {
    const res = await ping(nkeyWorker);
    expect(res.status, await res.clone().text()).toBe(200);
  });

  it("refuses a TLS client certificate setting, naming it in the log and not in the answer", async () => {
    const res = await ping(refusing);
    expect(res.status).toBe(500);
    const problem = (await res.json()) as { type: string; detail: string };
    expect(problem.type).toBe(`${PROBLEM_BASE}internal`);
    expect(problem.detail).not.toContain("TLS");
    expect(refusing.output()).toContain("CHORIA_EDGE_GATEWAY_NATS_TLS_CERT is set");
  });
});
