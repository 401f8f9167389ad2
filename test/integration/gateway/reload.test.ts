// SIGHUP to a real `choria-edge gateway` process under a steady stream of signed requests: the keys file
// (one key removed, one added) and the trigger file (one trigger for another) are changed and reloaded
// without a single request failing; a bad file is refused with a log line and the keys in use stay.
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROBLEM_BASE } from "../../../lib/gateway/problems.ts";
import { generateHttpKey, type Policy, type SigningKey } from "../../../lib/security/http/mod.ts";
import { testPki } from "../../support/pki.ts";
import { freePort } from "../../support/ports.ts";
import { CLUSTER, type Federation, signedInit, spawnGateway, startFederation } from "./support.ts";

const policy: Policy = {
  clusters: [CLUSTER],
  collectives: ["*"],
  agents: ["rpcutil"],
  actions: ["rpcutil#*"],
};

let federation: Federation;
let gateway: ChildProcess | undefined;
let gatewayUrl: string;
let dir: string;
let keysFile: string;
let triggersFile: string;
/** The gateway's log so far. */
let output: () => string = () => "";
/** `stay` is in both keys files, `old` only in the first, `fresh` only in the second. */
const signing: Record<"stay" | "old" | "fresh", SigningKey> = {} as never;
const entries: Record<"stay" | "old" | "fresh", unknown> = {} as never;

const triggers = (name: string) => `
triggers:
  - name: ${name}
    verify: { scheme: github, secrets_env: [RELOAD_TEST_SECRET] }
    policy: { clusters: [${CLUSTER}], collectives: ["*"], agents: [rpcutil], actions: ["rpcutil#*"] }
    request: { cluster: ${CLUSTER}, agent: rpcutil, action: ping }
`;

beforeAll(async () => {
  const [fed, pki, port] = await Promise.all([
    startFederation(2, { jetstream: true }),
    testPki(),
    freePort(),
  ]);
  federation = fed;
  for (const id of ["stay", "old", "fresh"] as const) {
    const made = await generateHttpKey({ id, caller: id, scheme: "ed25519", policy });
    signing[id] = { id, scheme: "ed25519", privateKey: made.keyFile.privateKey ?? "" };
    entries[id] = made.config;
  }
  dir = await mkdtemp(join(tmpdir(), "choria-edge-reload-"));
  const file = (name: string, text: string) => writeFile(join(dir, name), text).then(() => join(dir, name));
  const [cert, key] = await Promise.all([
    file("gateway.pem", pki.gateway.certPem),
    file("gateway-key.pem", pki.gateway.keyPem),
  ]);
  keysFile = await file("keys.json", JSON.stringify({ keys: [entries.stay, entries.old] }));
  triggersFile = await file("triggers.yaml", triggers("first"));
  const spawned = await spawnGateway(
    [
      ...["--listen", `127.0.0.1:${port}`, "--nats-servers", federation.federation.url],
      ...["--clusters", `${CLUSTER}=mcollective`, "--jobs", "on", "--triggers", triggersFile],
      ...["--cert", cert, "--key", key, "--keys", keysFile],
    ],
    dir,
    { RELOAD_TEST_SECRET: "webhook secret" },
  );
  gateway = spawned.child;
  output = spawned.output;
  gatewayUrl = `http://127.0.0.1:${port}`;
}, 60_000);

afterAll(async () => {
  if (gateway && gateway.exitCode === null && gateway.signalCode === null) gateway.kill("SIGKILL");
  await federation?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A sync ping; `nodes` may name one that never answers, to keep the request in flight until `timeout`. */
async function ping(key: SigningKey, nodes: string[], timeout = 2): Promise<Response> {
  const url = `${gatewayUrl}/v1/rpc`;
  return fetch(
    url,
    await signedInit(url, { cluster: CLUSTER, agent: "rpcutil", action: "ping", nodes, timeout }, key),
  );
}

/** The problem type an unsigned delivery to the trigger gets: unknown-trigger only when there is none. */
async function hookProblem(name: string): Promise<string> {
  const response = await fetch(`${gatewayUrl}/v1/hooks/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  return ((await response.json()) as { type: string }).type;
}

/** Until `count` requests have been answered: the machine's speed decides how long that takes. */
async function answered(statuses: readonly number[], count: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (statuses.length < count) {
    if (Date.now() > deadline) throw new Error(`only ${statuses.length} of ${count} requests answered`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function logged(text: string, after: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!output().slice(after).includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" in the gateway's log:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("choria-edge gateway on SIGHUP", () => {
  it("takes changed keys and trigger files under concurrent requests, failing none of them", async () => {
    const node = federation.fleet[0]?.identity ?? "";
    expect(await hookProblem("second")).toBe(`${PROBLEM_BASE}unknown-trigger`);
    const statuses: number[] = [];
    let running = true;
    const worker = async () => {
      while (running) statuses.push((await ping(signing.stay, [node])).status);
    };
    const workers = Array.from({ length: 4 }, worker);
    // In flight across the reload: waits for a node that never answers.
    const slow = ping(signing.stay, [node, "silent.example.net"], 4);
    await answered(statuses, 8);

    const before = output().length;
    await writeFile(keysFile, JSON.stringify({ keys: [entries.stay, entries.fresh] }));
    await writeFile(triggersFile, triggers("second"));
    gateway?.kill("SIGHUP");
    await logged("keys and triggers reloaded", before);
    await answered(statuses, statuses.length + 8);
    running = false;
    await Promise.all(workers);

    expect((await slow).status).toBe(200);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    expect(gateway?.exitCode).toBeNull();
    expect((await ping(signing.fresh, [node])).status).toBe(200);
    const removed = await ping(signing.old, [node]);
    expect(removed.status).toBe(401);
    expect(((await removed.json()) as { type: string }).type).toBe(`${PROBLEM_BASE}unknown-key`);
    expect(removed.headers.get("www-authenticate")).toContain("Signature");
    expect(await hookProblem("first")).toBe(`${PROBLEM_BASE}unknown-trigger`);
    expect(await hookProblem("second")).not.toBe(`${PROBLEM_BASE}unknown-trigger`);
  });

  it("refuses a bad keys file with a log line and keeps the keys in use", async () => {
    const node = federation.fleet[0]?.identity ?? "";
    const before = output().length;
    await writeFile(keysFile, "{ not json");
    gateway?.kill("SIGHUP");
    await logged("reload refused, keeping the keys and triggers in use", before);
    expect(gateway?.exitCode).toBeNull();
    expect((await ping(signing.stay, [node])).status).toBe(200);
    expect((await ping(signing.fresh, [node])).status).toBe(200);
  });
});
