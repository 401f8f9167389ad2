// How many socket writes a request costs the gateway's NATS connection. The bus here queues and writes the
// way nats.js does: a command queued on an empty buffer is written in a microtask, and a PING (flush) is
// written at once together with whatever is queued.
import { beforeAll, describe, expect, it } from "vitest";
import { createGateway } from "../../../lib/gateway/app.ts";
import { gatewayAuthFromKeys } from "../../../lib/gateway/auth.ts";
import { gatewayConfigFrom, parseClusters } from "../../../lib/gateway/config.ts";
import type { NatsSource } from "../../../lib/gateway/nats.ts";
import { loadSigner } from "../../../lib/security/choria.ts";
import { generateHttpKey, type SigningKey, signHttpRequest } from "../../../lib/security/http/mod.ts";
import type { MessageBus } from "../../../lib/transport/mod.ts";
import { testPki } from "../../support/pki.ts";

type BusHandler = Parameters<MessageBus["subscribe"]>[1];

/** A MessageBus that records its socket writes as nats.js would make them; every PING is answered. */
class WriteRecordingBus implements MessageBus {
  readonly name = "recording";
  readonly writes: string[][] = [];
  #outbound: string[] = [];

  subscribe(subject: string, _handler: BusHandler) {
    this.#queue(`SUB ${subject}`);
    return { drain: async () => {}, unsubscribe: () => {} };
  }
  queueSubscribe(subject: string, _queue: string, handler: BusHandler) {
    return this.subscribe(subject, handler);
  }
  publish(subject: string): boolean {
    this.#queue(`PUB ${subject}`);
    return true;
  }
  async flush(): Promise<void> {
    this.#outbound.push("PING");
    this.#write();
  }
  #queue(command: string): void {
    this.#outbound.push(command);
    if (this.#outbound.length === 1) queueMicrotask(() => this.#write());
  }
  #write(): void {
    if (this.#outbound.length === 0) return;
    this.writes.push(this.#outbound.map((command) => command.split(" ")[0] ?? command));
    this.#outbound = [];
  }
  pendingBytes = () => 0;
  drain = async () => {};
  close = async () => {};
  isConnected = () => true;
  connectedUrl = () => "nats://127.0.0.1:4222";
  onEvent = () => () => {};
}

const URL_RPC = "http://localhost/v1/rpc";
const bus = new WriteRecordingBus();
let app: ReturnType<typeof createGateway>;
let signing: SigningKey;

beforeAll(async () => {
  const policy = { clusters: ["C1"], collectives: ["*"], agents: ["*"], actions: ["*#*"] };
  const key = await generateHttpKey({ id: "ci", caller: "ci", scheme: "ed25519", policy });
  signing = { id: "ci", scheme: "ed25519", privateKey: key.keyFile.privateKey! };
  const clusters = parseClusters("C1=mcollective");
  if (!clusters.ok) throw new Error(clusters.error);
  const config = gatewayConfigFrom({ clusters: clusters.clusters });
  if (!config.ok) throw new Error(config.error);
  const nats: NatsSource = {
    acquire: async () => ({ bus, release: async () => {} }),
    status: () => "connected",
    close: async () => {},
  };
  app = createGateway({
    config: config.config,
    signer: await loadSigner((await testPki()).gateway),
    nats,
    auth: await gatewayAuthFromKeys(JSON.stringify({ keys: [key.config] })),
  });
});

async function post(json: unknown): Promise<Response> {
  const body = JSON.stringify(json);
  const headers = await signHttpRequest({
    method: "POST",
    url: URL_RPC,
    headers: { "content-type": "application/json" },
    body,
    key: signing,
  });
  return app.request(URL_RPC, { method: "POST", headers, body });
}

describe("the gateway's socket writes to NATS", () => {
  it("sends a request's liveness PING in the same write as its packet", async () => {
    const request = { cluster: "C1", agent: "rpcutil", action: "ping", nodes: ["n1"], timeout: 0.05 };
    // The first request also subscribes the process's reply wildcard.
    expect((await post(request)).status).toBe(200);
    expect(bus.writes).toEqual([["SUB", "PUB", "PING"]]);
    bus.writes.length = 0;
    expect((await post(request)).status).toBe(200);
    expect(bus.writes).toEqual([["PUB", "PING"]]);
  });

  it("sends discovery's PING in the same write as the discovery packet", async () => {
    bus.writes.length = 0;
    const request = {
      cluster: "C1",
      agent: "rpcutil",
      action: "ping",
      discovery_timeout: 0.05,
      timeout: 0.05,
    };
    const res = await post(request);
    expect(res.status).toBe(200);
    // Nobody answered discovery, so no directed request follows.
    expect(bus.writes).toEqual([["PUB", "PING"]]);
  });
});
