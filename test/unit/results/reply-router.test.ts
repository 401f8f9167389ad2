import { describe, expect, it } from "vitest";
import { parseSubject, replySubject } from "../../../lib/protocol/mod.ts";
import { collectReplies } from "../../../lib/results/collect-replies.ts";
import { ReplyRouter, replyRouter } from "../../../lib/results/reply-router.ts";
import { type RpcPlan, resolveTargets, sendRpc } from "../../../lib/results/rpc.ts";
import type { MessageBus } from "../../../lib/transport/mod.ts";

type Handler = Parameters<MessageBus["subscribe"]>[1];

/** Just enough of a bus: NATS token wildcards (`*`), and a count of the SUBs it was asked for. */
function fakeBus() {
  const subs = new Map<number, { pattern: string; handler: Handler }>();
  let next = 0;
  const matches = (pattern: string, subject: string) => {
    const p = pattern.split(".");
    const s = subject.split(".");
    return p.length === s.length && p.every((token, i) => token === "*" || token === s[i]);
  };
  let subscribed = 0;
  const bus = {
    subscribe(pattern: string, handler: Handler) {
      const id = next++;
      subscribed++;
      subs.set(id, { pattern, handler });
      return { unsubscribe: () => subs.delete(id), drain: async () => void subs.delete(id) };
    },
    publish: () => true,
    connectedUrl: () => "nats://127.0.0.1:4222",
  } as unknown as MessageBus;
  return {
    bus,
    subscribed: () => subscribed,
    patterns: () => [...subs.values()].map((s) => s.pattern),
    deliver(subject: string, text = "x") {
      for (const s of subs.values())
        if (matches(s.pattern, subject)) s.handler({ subject, data: new TextEncoder().encode(text) });
    },
  };
}

const CALLER = "choria=bench.mcollective";
const ID_A = "0123456789abcdef0123456789abcdef";
const ID_B = "fedcba9876543210fedcba9876543210";

describe("ReplyRouter", () => {
  it("hands each reply to the collection waiting on its subject, and no other", () => {
    const { bus, deliver } = fakeBus();
    const router = new ReplyRouter(bus, "tok");
    const got: Record<string, string[]> = { a: [], b: [] };
    const inboxA = router.inbox("mcollective", CALLER, ID_A);
    const inboxB = router.inbox("mcollective", CALLER, ID_B);
    router.subscribe(inboxA, (m) => got.a?.push(new TextDecoder().decode(m.data)));
    router.subscribe(inboxB, (m) => got.b?.push(new TextDecoder().decode(m.data)));
    deliver(inboxB, "to b");
    deliver(inboxA, "to a");
    deliver(inboxA, "to a again");
    expect(got).toEqual({ a: ["to a", "to a again"], b: ["to b"] });
    expect(router.stats()).toMatchObject({ routed: 3, dropped: 0, waiting: 2 });
  });

  it("subscribes once per collective and caller id, inside the caller's reply space", () => {
    const { bus, patterns } = fakeBus();
    const router = new ReplyRouter(bus, "tok");
    const inbox = router.inbox("mcollective", CALLER, ID_A);
    router.inbox("mcollective", CALLER, ID_B);
    router.inbox("other", CALLER, ID_A);
    const prefix = replySubject("mcollective", CALLER, "x").slice(0, -1);
    expect(inbox).toBe(`${prefix}tok.${ID_A}`);
    expect(patterns()).toEqual([`${prefix}tok.*`, `${replySubject("other", CALLER, "x").slice(0, -1)}tok.*`]);
    expect(parseSubject(inbox)).toMatchObject({
      ok: true,
      value: { kind: "reply", collective: "mcollective" },
    });
  });

  it("drops and counts a reply that comes after its collection ended, or for nobody", () => {
    const { bus, deliver } = fakeBus();
    const router = new ReplyRouter(bus, "tok");
    const inbox = router.inbox("mcollective", CALLER, ID_A);
    const seen: string[] = [];
    const sub = router.subscribe(inbox, (m) => seen.push(m.subject));
    deliver(inbox);
    sub.unsubscribe();
    deliver(inbox);
    deliver(router.inbox("mcollective", CALLER, ID_B));
    expect(seen).toHaveLength(1);
    expect(router.stats()).toMatchObject({ routed: 1, dropped: 2, waiting: 0 });
  });

  it("keeps no waiter once a collection has timed out", async () => {
    const { bus, deliver } = fakeBus();
    const router = new ReplyRouter(bus, "tok");
    const inbox = router.inbox("mcollective", CALLER, ID_A);
    const collection = await collectReplies(bus, inbox, ID_A, { timeoutMs: 20, feed: router }).result;
    expect(collection.done).toBe("timeout");
    expect(router.stats().waiting).toBe(0);
    deliver(inbox);
    expect(router.stats().dropped).toBe(1);
  });

  it("lets a connection's requests share one subscription: sendRpc subscribes once for many requests", async () => {
    const { bus, subscribed } = fakeBus();
    const client = {
      signer: { certname: "bench.mcollective", pubcert: "-", sign: async () => "c2ln" },
      callerid: CALLER,
      senderid: "bench.example.net",
    };
    const plan: RpcPlan = {
      cluster: "C1",
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
      data: {},
      filter: {},
      addressing: { kind: "nodes", nodes: ["node1.example.net"] },
      timeoutMs: 10,
    };
    for (let i = 0; i < 3; i++) {
      const result = await sendRpc(bus, client, plan, await resolveTargets(bus, client, plan));
      expect(result.summary.done).toBe("timeout");
    }
    expect(subscribed()).toBe(1);
    expect(replyRouter(bus).stats()).toMatchObject({ subscriptions: 1, waiting: 0 });
  });

  it("gives each bus one router, and two routers different inboxes for the same request", () => {
    const one = fakeBus().bus;
    expect(replyRouter(one)).toBe(replyRouter(one));
    const other = replyRouter(fakeBus().bus);
    expect(other.inbox("mcollective", CALLER, ID_A)).not.toBe(
      replyRouter(one).inbox("mcollective", CALLER, ID_A),
    );
  });
});
