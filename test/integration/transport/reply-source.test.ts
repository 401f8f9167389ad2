import { jetstreamManager } from "@nats-io/jetstream";
import { afterEach, describe, expect, it } from "vitest";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { type CapturedReply, streamReplySource } from "../../../lib/transport/reply-source.ts";
import { startNatsServer } from "../../support/nats-server.ts";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});

/** A server, a connection, and a stream reply source on it with this ack wait. */
async function capture(ackWaitMs: number) {
  const server = await startNatsServer({ jetstream: true });
  cleanup.push(() => server.dispose());
  const bus: NatsBus = await connectNats({ servers: server.url, name: "reply-source-test" });
  cleanup.push(() => bus.close());
  const options = {
    stream: "TEST_REPLIES",
    subjects: ["test.reply.>"],
    consumer: "test_collectors",
    maxAgeMs: 60_000,
    ackWaitMs,
  };
  return { server, bus, options, source: await streamReplySource(bus.connection, options) };
}

describe("the stream reply source", () => {
  it("keeps a reply it is still handling past the ack wait from being handed out again", async () => {
    const { bus, options, source } = await capture(300);
    const handled: CapturedReply[] = [];
    let finish = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    // A store far slower than the ack wait.
    await source.start(async (reply) => {
      handled.push(reply);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      finish();
      return "done";
    });
    bus.publish("test.reply.1", "slow");
    await finished;
    await source.stop();

    expect(handled.map((r) => [r.subject, r.redelivered])).toEqual([["test.reply.1", false]]);
    const jsm = await jetstreamManager(bus.connection);
    const consumer = await jsm.consumers.info(options.stream, options.consumer);
    expect(consumer).toMatchObject({ num_redelivered: 0, num_ack_pending: 0, num_pending: 0 });
  });

  it("says a reply is in progress only when it is held a while, not for every reply it handles", async () => {
    // In-progress checks every 200 ms; a reply held 30 ms is far from needing one.
    const { server, bus, options, source } = await capture(600);
    const acks: string[] = [];
    const watcher: NatsBus = await connectNats({ servers: server.url, name: "ack-watcher" });
    cleanup.push(() => watcher.close());
    watcher.subscribe(`$JS.ACK.${options.stream}.>`, (msg) => acks.push(new TextDecoder().decode(msg.data)));
    await watcher.flush();
    let handled = 0;
    await source.start(async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      handled++;
      return "done";
    });
    // Over five check intervals, one reply in flight most of the time.
    for (let i = 0; i < 50; i++) {
      bus.publish(`test.reply.${i}`, "quick");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    while (handled < 50) await new Promise((resolve) => setTimeout(resolve, 20));
    await source.stop();
    await watcher.flush();

    expect(acks.filter((ack) => ack === "+WPI")).toEqual([]);
    expect(acks.filter((ack) => ack === "+ACK")).toHaveLength(50);
  });
});
