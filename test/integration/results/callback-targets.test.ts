// Where the collector delivers callbacks, with a real nats-server and real collectors: a callback
// pointed at an address inside the network (here the NATS port itself, and a receiver on 127.0.0.1) is
// refused after resolution unless the operator allows private addresses, and a job only ever records an
// outcome class, never what the far end answered.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningCollector, startCollector } from "../../../functions/result-collector.ts";
import { jobView } from "../../../lib/results/jobs/model.ts";
import type { JobStore } from "../../../lib/results/jobs/store.ts";
import { newWebhookSecret } from "../../../lib/results/jobs/webhook.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { type Receiver, simulatedNodes, startReceiver } from "../../unit/results/jobs/support.ts";
import { asyncRequest, collectorConfig, gatewaySide, memoryLog, recordOf, waitUntil } from "./support.ts";

const SECRET = newWebhookSecret();
let server: NatsServer;
let receiver: Receiver;
let gateway: { bus: NatsBus; store: JobStore };
let client: Awaited<ReturnType<typeof simulatedNodes>>["client"];

beforeAll(async () => {
  [server, receiver] = await Promise.all([startNatsServer({ jetstream: true }), startReceiver(SECRET)]);
  gateway = await gatewaySide(server);
  client = (await simulatedNodes(1)).client;
});

afterAll(async () => {
  await Promise.allSettled([gateway?.bus.close(), receiver?.close()]);
  await server?.dispose();
});

/** A job with no targets to wait for and a deadline at once, so that its callback is due right away. */
async function jobCallingBack(url: string): Promise<string> {
  const request = await asyncRequest(
    gateway.store,
    gateway.bus,
    client,
    { agent: "rpcutil", action: "ping" },
    { targets: ["ghost.example.net"], timeout_ms: 1, callback: { kind: "url", url } },
  );
  return request.job.id;
}

async function withCollector<T>(allowPrivate: boolean, work: () => Promise<T>): Promise<T> {
  const collector: RunningCollector = await startCollector(
    collectorConfig(server, {
      callbackSecret: SECRET,
      allowPrivateCallbacks: allowPrivate,
      callbackAttempts: 2,
    }),
    { log: memoryLog() },
  );
  try {
    return await work();
  } finally {
    await collector.stop();
  }
}

async function attemptsOf(id: string, count: number) {
  await waitUntil(
    `${count} attempts`,
    async () => ((await recordOf(gateway.store, id)).callback?.attempts.length ?? 0) >= count,
  );
  return recordOf(gateway.store, id);
}

describe("callback addresses", () => {
  it("by default refuses the NATS port, 127.0.0.1 and localhost: refused_address, nothing sent, no retry", async () => {
    const nats = new URL(server.url);
    const port = new URL(receiver.url).port;
    await withCollector(false, async () => {
      const ids = await Promise.all(
        [`http://127.0.0.1:${nats.port}/`, receiver.url, `http://localhost:${port}/hook`].map(jobCallingBack),
      );
      for (const id of ids) {
        const record = await attemptsOf(id, 1);
        await waitUntil(
          "the callback to fail",
          async () => (await recordOf(gateway.store, id)).callback?.status === "failed",
        );
        expect(record.callback?.attempts).toEqual([
          expect.objectContaining({ ok: false, outcome: "refused_address" }),
        ]);
      }
    });
    expect(receiver.deliveries).toHaveLength(0);
  });

  it("with --allow-private-callbacks delivers to 127.0.0.1; the NATS port's answer shows as connection_failed only", async () => {
    const nats = new URL(server.url);
    await withCollector(true, async () => {
      const delivered = await jobCallingBack(receiver.url);
      const garbled = await jobCallingBack(`http://127.0.0.1:${nats.port}/`);
      await waitUntil(
        "the delivery",
        async () => (await recordOf(gateway.store, delivered)).callback?.status === "delivered",
      );
      expect((await recordOf(gateway.store, delivered)).callback?.attempts).toEqual([
        expect.objectContaining({ ok: true, outcome: "delivered", status: 200 }),
      ]);
      const record = await attemptsOf(garbled, 1);
      const attempt = record.callback!.attempts[0]!;
      expect(attempt).toMatchObject({ ok: false, outcome: "connection_failed" });
      expect(attempt.error).toBeUndefined();
      const shown = JSON.stringify(jobView(record));
      expect(shown).not.toMatch(/INFO|server_id|HTTP\/1\.1|protocol|ECONN/);
    });
    expect(receiver.deliveries.map((d) => d.verified)).toEqual([true]);
  });
});
