// A gateway process killed while it holds a trigger's lock (its discovery still running, no job yet):
// the lock frees itself within the hold TTL, because only the dead process was renewing it.
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataStore, DEFAULT_DATA_BUCKET, Locks } from "../../../lib/data/mod.ts";
import { signGithub } from "../../../lib/security/webhooks/mod.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { testPki } from "../../support/pki.ts";
import { freePort } from "../../support/ports.ts";
import { CLUSTER, type Federation, spawnGateway, startFederation, testKeys } from "./support.ts";

const SECRET = "crash test webhook secret";
// What the gateway gives itself while it works; the README promises a dead gateway's locks free this soon.
const HOLD_TTL_MS = 15_000;

let federation: Federation;
let dir: string;
let gateway: ChildProcess | undefined;
let gatewayUrl: string;
let side: NatsBus;
let locks: Locks;

// Discovery for a node that does not exist runs its whole timeout, holding the lock all along.
const TRIGGERS = `
triggers:
  - name: slow
    verify: { scheme: github, secrets_env: [CRASH_TEST_SECRET] }
    policy: { clusters: [${CLUSTER}], collectives: ["*"], agents: [rpcutil], actions: ["rpcutil#*"] }
    request:
      cluster: ${CLUSTER}
      agent: rpcutil
      action: ping
      filter: { identity: [nobody.example.net] }
      discovery_timeout: 30
    locks: [deploy]
`;

beforeAll(async () => {
  const [fed, keys, pki, port] = await Promise.all([
    startFederation(2, { jetstream: true }),
    testKeys(),
    testPki(),
    freePort(),
  ]);
  federation = fed;
  dir = await mkdtemp(join(tmpdir(), "choria-edge-crash-"));
  const file = (name: string, text: string) => writeFile(join(dir, name), text).then(() => join(dir, name));
  const [cert, key, keysFile, triggers] = await Promise.all([
    file("gateway.pem", pki.gateway.certPem),
    file("gateway-key.pem", pki.gateway.keyPem),
    file("keys.json", keys.json),
    file("triggers.yaml", TRIGGERS),
  ]);
  gateway = (
    await spawnGateway(
      [
        ...["--listen", `127.0.0.1:${port}`, "--nats-servers", federation.federation.url],
        ...["--clusters", `${CLUSTER}=mcollective`, "--jobs", "on", "--triggers", triggers],
        ...["--cert", cert, "--key", key, "--keys", keysFile],
      ],
      dir,
      { CRASH_TEST_SECRET: SECRET },
    )
  ).child;
  side = await connectNats({ servers: federation.federation.url, name: "crash-test" });
  locks = new Locks(
    new DataStore(await NatsKvBucket.open(side.connection, { name: DEFAULT_DATA_BUCKET, ttlMs: 0 })),
  );
  gatewayUrl = `http://127.0.0.1:${port}`;
}, 60_000);

afterAll(async () => {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) gateway.kill("SIGKILL");
  await side?.close();
  await federation?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("a gateway killed while it holds a trigger's lock", () => {
  it("leaves a lock that frees itself within the hold TTL", async () => {
    const body = JSON.stringify({ ref: "refs/heads/main" });
    const delivery = randomUUID();
    const sent = fetch(`${gatewayUrl}/v1/hooks/slow`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-github-event": "push",
        "x-github-delivery": delivery,
        "x-hub-signature-256": await signGithub(SECRET, body),
      },
      body,
    }).catch(() => undefined);

    const deadline = Date.now() + 10_000;
    let state = await locks.inspect("deploy");
    while (state === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      state = await locks.inspect("deploy");
    }
    expect(state?.holder).toBe(`slow/${delivery}`);
    expect(state?.expired).toBe(false);

    const killedAt = Date.now();
    gateway!.kill("SIGKILL");
    await sent;
    const taken = await locks.acquire("deploy", {
      holder: "after-crash",
      ttlMs: 5000,
      timeoutMs: HOLD_TTL_MS + 5000,
    });
    const waited = Date.now() - killedAt;
    expect(taken).toBeDefined();
    expect(waited).toBeLessThanOrEqual(HOLD_TTL_MS + 1000);
    // Nobody released it: it ran out, at least two thirds of the TTL after the kill (the gateway renews
    // every third of it).
    expect(waited).toBeGreaterThanOrEqual((HOLD_TTL_MS * 2) / 3 - 1000);
    await taken!.release();
  }, 40_000);
});
