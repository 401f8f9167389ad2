import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { type NatsServer, restartNatsServer, startNatsServer } from "../../support/nats-server.ts";

describe("nats-server harness", () => {
  const servers: NatsServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.dispose()));
  });

  it("starts a real server on 127.0.0.1 that routes messages", async () => {
    const server = await startNatsServer();
    servers.push(server);
    expect(server.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    const nc = await connect({ servers: server.url, timeout: 2000 });
    const sub = nc.subscribe("harness.echo", { max: 1 });
    nc.publish("harness.echo", "hello");
    for await (const m of sub) expect(m.string()).toBe("hello");
    await nc.close();
  });

  it("keeps JetStream data across a restart on the same port", async () => {
    const first = await startNatsServer({ jetstream: true, websocket: true });
    expect(first.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    await first.stop();
    const second = await restartNatsServer(first);
    servers.push(second);
    expect(second.port).toBe(first.port);
    const nc = await connect({ servers: second.url, timeout: 2000 });
    expect(nc.info?.jetstream).toBe(true);
    await nc.close();
  });

  it("stops the process so that the port refuses connections", async () => {
    const server = await startNatsServer();
    await server.dispose();
    await expect(connect({ servers: server.url, timeout: 500, reconnect: false })).rejects.toThrow();
  });
});
