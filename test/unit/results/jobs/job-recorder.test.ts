import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { openReply } from "../../../../lib/client/replies.ts";
import { ManualClock } from "../../../../lib/clock/mod.ts";
import { MemoryKvBucket } from "../../../../lib/kv/memory.ts";
import { decodeBase64Text, encodeBase64Text } from "../../../../lib/protocol/base64.ts";
import {
  type CallbackSender,
  callbackSender,
  type RetryPolicy,
} from "../../../../lib/results/jobs/callbacks.ts";
import { JobRecorder } from "../../../../lib/results/jobs/job-recorder.ts";
import { endJob } from "../../../../lib/results/jobs/lifecycle.ts";
import { type JobRecord, jobView, resultOfReply } from "../../../../lib/results/jobs/model.ts";
import { JobStore } from "../../../../lib/results/jobs/store.ts";
import { jobReplySubject, newJobId } from "../../../../lib/results/jobs/subjects.ts";
import type {
  CapturedReply,
  ReplyDisposition,
  ReplyHandler,
  ReplySource,
} from "../../../../lib/transport/reply-source.ts";
import {
  COLLECTIVE,
  forgedReply,
  type Nodes,
  newJob,
  repliesOf,
  signedRequest,
  simulatedNodes,
} from "./support.ts";

/** A reply source the test hands replies to, one at a time, and that says what the collector did. */
class HandSource implements ReplySource {
  readonly kind = "queue" as const;
  #handler: ReplyHandler | undefined;
  settled = Number.POSITIVE_INFINITY;

  async start(handler: ReplyHandler) {
    this.#handler = handler;
  }
  deliver(subject: string, body: string, redelivered = false): Promise<ReplyDisposition> {
    const reply: CapturedReply = {
      subject,
      data: new TextEncoder().encode(body),
      receivedAt: Date.now(),
      redelivered,
    };
    return this.#handler!(reply);
  }
  async settledThrough() {
    return this.settled;
  }
  async stop() {}
}

const POLICY: RetryPolicy = { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 3, jitter: 0, leaseMs: 5000 };
let running: JobRecorder[] = [];
afterEach(async () => {
  await Promise.all(running.map((c) => c.stop()));
  running = [];
});

async function setup(callbacks: CallbackSender = callbackSender({}), shared?: JobStore) {
  const clock = new ManualClock();
  const store = shared ?? new JobStore(new MemoryKvBucket(), { clock });
  const source = new HandSource();
  const collector = new JobRecorder({
    store,
    source,
    callbacks,
    retryPolicy: POLICY,
    sweepIntervalMs: 20,
    clock,
  });
  await collector.start();
  running.push(collector);
  return { clock, store, source, collector };
}

/** A job for `targets` and the replies the nodes give to its request. */
async function jobWithReplies(
  nodes: Nodes,
  store: JobStore,
  targets: string[],
  extra: Partial<Parameters<typeof newJob>[0]> = {},
): Promise<{ job: JobRecord; subject: string; replies: string[] }> {
  const id = newJobId();
  const subject = jobReplySubject(COLLECTIVE, nodes.client.callerid, id);
  const request = await signedRequest(nodes, { agent: "rpcutil", action: "ping" }, subject);
  const outcome = await store.create(newJob({ request_id: request.requestId, targets, ...extra }));
  if (outcome.outcome !== "created") throw new Error(outcome.outcome);
  // The job id is the store's: address the replies to it.
  const jobSubject = jobReplySubject(COLLECTIVE, nodes.client.callerid, outcome.job.id);
  const replies = (await repliesOf(nodes, request.body, targets)).map((r) => r.body);
  return { job: outcome.job, subject: jobSubject, replies };
}

/** A memory bucket whose creates of results for `slow` identities take 100 ms more: writes in flight. */
class SlowCreates extends MemoryKvBucket {
  slow = new Set<string>();
  override async create(key: string, value: Uint8Array | string) {
    if ([...this.slow].some((identity) => key.endsWith(`.${identity}`)))
      await new Promise((resolve) => setTimeout(resolve, 100));
    return super.create(key, value);
  }
}

/** Moves the clock on in small steps until `condition` holds, or two seconds have passed on it. */
async function waitFor(clock: ManualClock, condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400 && !(await condition()); i++) await clock.advance(5);
}

describe("the collector", () => {
  it("stores each reply once, counts it, and completes the job when every target answered", async () => {
    const nodes = await simulatedNodes(3);
    const { clock, store, source, collector } = await setup();
    const targets = nodes.fleet.map((n) => n.identity);
    const { job, subject, replies } = await jobWithReplies(nodes, store, targets);
    expect(await source.deliver(subject, replies[0]!)).toBe("done");
    expect(await source.deliver(subject, replies[0]!)).toBe("done");
    expect(collector.stats).toMatchObject({ stored: 1, duplicates: 1 });
    expect((await store.get(job.id))?.record.counts.ok).toBe(1);
    await Promise.all(replies.slice(1).map((r) => source.deliver(subject, r)));
    await waitFor(clock, async () => (await store.get(job.id))!.record.settled);
    expect((await store.get(job.id))?.record).toMatchObject({
      state: "complete",
      counts: { ok: 3, no_reply: 0 },
    });
  });

  it("opens replies with a synchronous digest the same way, and counts a batch that arrives at once", async () => {
    const nodes = await simulatedNodes(5);
    const clock = new ManualClock();
    const store = new JobStore(new MemoryKvBucket(), { clock });
    const source = new HandSource();
    const writes: string[] = [];
    const update = store.update.bind(store);
    store.update = (id, change) => {
      writes.push(id);
      return update(id, change);
    };
    const collector = new JobRecorder({
      store,
      source,
      callbacks: callbackSender({}),
      replyDigest: (text) => createHash("sha256").update(text, "utf8").digest("base64"),
      clock,
    });
    await collector.start();
    running.push(collector);
    const targets = nodes.fleet.map((n) => n.identity);
    const { job, subject, replies } = await jobWithReplies(nodes, store, targets);
    // A reply whose message was changed after it was hashed.
    const transport = JSON.parse(replies[0]!) as { data: string };
    const secure = JSON.parse(decodeBase64Text(transport.data)!) as { message: string; hash: string };
    transport.data = encodeBase64Text(JSON.stringify({ ...secure, message: `${secure.message} ` }));
    const tampered = JSON.stringify(transport);
    const handled = await Promise.all([
      source.deliver(subject, tampered),
      ...replies.slice(0, 4).map((r) => source.deliver(subject, r)),
    ]);
    expect(handled).toEqual(["done", "done", "done", "done", "done"]);
    expect(collector.stats).toMatchObject({ received: 5, invalid: 1, stored: 4 });
    // The four arrived together: one count write for them.
    expect(writes).toHaveLength(1);
    expect((await store.get(job.id))?.record.counts.ok).toBe(4);
    await source.deliver(subject, replies[4]!);
    await waitFor(clock, async () => (await store.get(job.id))!.record.settled);
    expect((await store.get(job.id))?.record).toMatchObject({ state: "complete", counts: { ok: 5 } });
  });

  it("refuses what is not a reply to the job's request, and replies to jobs that are gone or ended", async () => {
    const nodes = await simulatedNodes(2);
    const { store, source, collector } = await setup();
    const targets = nodes.fleet.map((n) => n.identity);
    const first = await jobWithReplies(nodes, store, targets);
    const second = await jobWithReplies(nodes, store, targets);
    await source.deliver(first.subject, "not a reply");
    await source.deliver("mcollective.reply.abc.123", first.replies[0]!);
    // A reply to the second job's request arriving on the first job's subject.
    await source.deliver(first.subject, second.replies[0]!);
    await source.deliver(jobReplySubject(COLLECTIVE, nodes.client.callerid, newJobId()), first.replies[0]!);
    expect(collector.stats).toMatchObject({ invalid: 3, unknown_job: 1, stored: 0 });

    await endJob(store, second.job.id, "cancel");
    // A collector that reads the job after its end refuses the reply as late.
    const { source: other, collector: otherCollector } = await setup(callbackSender({}), store);
    expect(await other.deliver(second.subject, second.replies[1]!)).toBe("done");
    expect(otherCollector.stats).toMatchObject({ late: 1, stored: 0 });
  });

  it("marks unexpected repliers and cuts big data to the job's limit", async () => {
    const nodes = await simulatedNodes(2);
    const { store, source } = await setup();
    const [a, b] = nodes.fleet.map((n) => n.identity) as [string, string];
    const { job, subject, replies } = await jobWithReplies(nodes, store, [a, b], { max_data_bytes: 5 });
    const onlyA = await store.create(newJob({ request_id: job.request_id, targets: [a] }));
    if (onlyA.outcome !== "created") throw new Error(onlyA.outcome);
    const aSubject = jobReplySubject(COLLECTIVE, nodes.client.callerid, onlyA.job.id);
    await source.deliver(aSubject, replies[1]!);
    await source.deliver(subject, replies[0]!);
    const stray = (await store.page(onlyA.job, { limit: 10 })).results[0];
    expect(stray).toMatchObject({ identity: b, unexpected: true });
    const cut = (await store.page(job, { limit: 10 })).results[0];
    expect(cut).toMatchObject({ identity: a, truncated: true });
    expect(cut?.data).toBe('{"pon');
  });

  it("a reply handed out again after it was stored sets the counts right from the stored results", async () => {
    const nodes = await simulatedNodes(2);
    const { clock, store, source } = await setup();
    const targets = nodes.fleet.map((n) => n.identity);
    const { job, subject, replies } = await jobWithReplies(nodes, store, targets);
    // As if a collector stored both replies, then died before counting the second.
    await source.deliver(subject, replies[0]!);
    const opened = await openReply(replies[1]!);
    if (!opened.ok) throw opened.error;
    await store.putResult(
      job.id,
      resultOfReply(opened.value, { maxDataBytes: 1000, receivedAt: 0, unexpected: false }),
    );
    expect((await store.get(job.id))?.record.counts.ok).toBe(1);
    await source.deliver(subject, replies[1]!, true);
    await waitFor(clock, async () => (await store.get(job.id))!.record.settled);
    expect((await store.get(job.id))?.record).toMatchObject({ state: "complete", counts: { ok: 2 } });
  });

  // Found by `npm run chaos` (collector kill): the recount read the results while other handed-out-again
  // replies were still being stored, its write was then declined because those replies had been counted
  // meanwhile, and nothing tried again, so the job ran short until its deadline.
  it("sets the counts right when replies handed out again are still being stored as it reads", async () => {
    const nodes = await simulatedNodes(20);
    const bucket = new SlowCreates();
    const { clock, store, source } = await setup(callbackSender({}), new JobStore(bucket));
    const targets = nodes.fleet.map((n) => n.identity);
    const { job, subject, replies } = await jobWithReplies(nodes, store, targets);
    // The killed collector counted replies 0–9 and stored 10–13 without counting them.
    await Promise.all(replies.slice(0, 10).map((r) => source.deliver(subject, r)));
    for (const reply of replies.slice(10, 14)) {
      const opened = await openReply(reply);
      if (!opened.ok) throw opened.error;
      await store.putResult(
        job.id,
        resultOfReply(opened.value, { maxDataBytes: 1000, receivedAt: 0, unexpected: false }),
      );
    }
    bucket.slow = new Set(targets.slice(17));
    const first = replies.slice(10, 17).map((r) => source.deliver(subject, r, true));
    await new Promise((resolve) => setImmediate(resolve));
    const second = replies.slice(17).map((r) => source.deliver(subject, r, true));
    await Promise.all([...first, ...second]);
    await waitFor(clock, async () => (await store.get(job.id))!.record.settled);
    expect((await store.get(job.id))?.record).toMatchObject({ state: "complete", counts: { ok: 20 } });
  });

  // Issue 13, finding 13: v1 replies are hashed, not signed, so anyone on the collective can answer in a
  // node's name. The first reply stays the result; a different one is made visible, not dropped.
  it("keeps a second, different reply from a node as a conflict; the same reply again stays a duplicate", async () => {
    const nodes = await simulatedNodes(2);
    const { clock, store, source, collector } = await setup();
    const [a, b] = nodes.fleet.map((n) => n.identity) as [string, string];
    const { job, subject, replies } = await jobWithReplies(nodes, store, [a, b]);
    const forged = await forgedReply(replies[0]!, { data: '{"pong":1}' });
    const forgedAgain = await forgedReply(replies[0]!, { data: '{"pong":2}' });
    await source.deliver(subject, replies[0]!);
    await source.deliver(subject, replies[0]!);
    expect(collector.stats).toMatchObject({ stored: 1, duplicates: 1, conflicts: 0 });
    await source.deliver(subject, forged);
    await source.deliver(subject, forged);
    await source.deliver(subject, forgedAgain);
    // Every different reply is seen; the node is counted once.
    expect(collector.stats).toMatchObject({ stored: 1, duplicates: 1, conflicts: 3 });
    expect((await store.get(job.id))?.record).toMatchObject({
      state: "running",
      counts: { ok: 1, conflicts: 1 },
      conflicting: [a],
    });
    await source.deliver(subject, replies[1]!);
    await waitFor(clock, async () => (await store.get(job.id))!.record.settled);
    // Settling recounts from what is stored, conflicts included.
    const settled = (await store.get(job.id))!.record;
    expect(settled).toMatchObject({
      state: "complete",
      counts: { ok: 2, no_reply: 0, unexpected: 0, conflicts: 1 },
      conflicting: [a],
    });
    const results = (await store.page(settled, { limit: 10 })).results;
    expect(results).toHaveLength(2);
    const real = await openReply(replies[0]!);
    if (!real.ok) throw real.error;
    expect(results.find((r) => r.identity === a)).toMatchObject({ hash: real.value.hash });
    const view = jobView(settled);
    expect(view).toMatchObject({ counts: { conflicts: 1 }, conflicting: [a] });
  });

  it("counts a reply in the name of a node that was not targeted as unexpected", async () => {
    const nodes = await simulatedNodes(2);
    const { store, source } = await setup();
    const [a, b] = nodes.fleet.map((n) => n.identity) as [string, string];
    const { job, subject, replies } = await jobWithReplies(nodes, store, [a, b]);
    await source.deliver(subject, await forgedReply(replies[0]!, { sender: "intruder.example.net" }));
    expect((await store.get(job.id))?.record).toMatchObject({
      state: "running",
      counts: { ok: 1, unexpected: 1, conflicts: 0 },
    });
    expect((await store.page(job, { limit: 10, filters: new Set(["unexpected"]) })).results).toMatchObject([
      { identity: "intruder.example.net", unexpected: true },
    ]);
  });

  it("a conflicting reply handed out again after it was kept but not counted is counted from the store", async () => {
    const nodes = await simulatedNodes(2);
    const { clock, store, source } = await setup();
    const [a, b] = nodes.fleet.map((n) => n.identity) as [string, string];
    const { job, subject, replies } = await jobWithReplies(nodes, store, [a, b]);
    const forged = await forgedReply(replies[0]!, { data: '{"pong":1}' });
    await source.deliver(subject, replies[0]!);
    // As if a collector kept the conflicting reply, then died before counting it.
    const opened = await openReply(forged);
    if (!opened.ok) throw opened.error;
    await store.putConflict(
      job.id,
      resultOfReply(opened.value, { maxDataBytes: 1000, receivedAt: 0, unexpected: false }),
    );
    expect((await store.get(job.id))?.record.counts.conflicts).toBe(0);
    await source.deliver(subject, forged, true);
    await waitFor(clock, async () => (await store.get(job.id))!.record.counts.conflicts === 1);
    // Set right while the job runs, not only when it settles.
    const fixed = (await store.get(job.id))!.record;
    expect([fixed.state, fixed.counts.conflicts, fixed.conflicting]).toEqual(["running", 1, [a]]);
    await source.deliver(subject, replies[1]!);
    await waitFor(clock, async () => (await store.get(job.id))!.record.settled);
    expect((await store.get(job.id))?.record).toMatchObject({ counts: { ok: 2, conflicts: 1 } });
  });

  it("ends a job at its deadline only once every reply from before the deadline has been handled", async () => {
    const nodes = await simulatedNodes(2);
    const { clock, store, source } = await setup();
    source.settled = 0;
    const targets = nodes.fleet.map((n) => n.identity);
    const { job } = await jobWithReplies(nodes, store, targets, { timeout_ms: 10 });
    // Several sweeps, all past the deadline.
    await clock.advance(100);
    expect((await store.get(job.id))?.record.state).toBe("running");
    source.settled = Number.POSITIVE_INFINITY;
    await waitFor(clock, async () => (await store.get(job.id))!.record.settled);
    expect((await store.get(job.id))?.record).toMatchObject({ state: "timed_out", counts: { no_reply: 2 } });
  });

  it("retries a failing callback with backoff, records each attempt, and stops once delivered", async () => {
    const nodes = await simulatedNodes(1);
    const outcomes = [
      { ok: false, outcome: "connection_failed" as const },
      { ok: false, outcome: "http_error" as const, status: 502 },
      { ok: true, outcome: "delivered" as const, status: 200 },
    ];
    const sent: number[] = [];
    const { clock, store, source } = await setup({
      send: async () => {
        sent.push(clock.now());
        return outcomes.shift() ?? { ok: true, outcome: "delivered" as const, status: 200 };
      },
    });
    const targets = nodes.fleet.map((n) => n.identity);
    const { job, subject, replies } = await jobWithReplies(nodes, store, targets, {
      callback: { kind: "url", url: "https://hooks.example/done" },
    });
    await source.deliver(subject, replies[0]!);
    await waitFor(clock, async () => (await store.get(job.id))!.record.callback?.status === "delivered");
    const callback = (await store.get(job.id))!.record.callback!;
    expect(callback.attempts.map((a) => a.ok)).toEqual([false, false, true]);
    // POLICY's base delay, doubled after the second failure.
    expect([sent[1]! - sent[0]!, sent[2]! - sent[1]!]).toEqual([20, 40]);
    await clock.advance(100);
    expect(sent).toHaveLength(3);
    const run: string[] = [];
    for await (const entry of store.runIndex()) run.push(entry.id);
    expect(run).not.toContain(job.id);
  });

  it("carries out a settled job's effects once they succeed, and keeps the job in its index until then", async () => {
    const nodes = await simulatedNodes(2);
    const clock = new ManualClock();
    const store = new JobStore(new MemoryKvBucket(), { clock });
    const source = new HandSource();
    const applied: string[] = [];
    let failures = 1;
    const collector = new JobRecorder({
      store,
      source,
      callbacks: callbackSender({}),
      retryPolicy: POLICY,
      sweepIntervalMs: 20,
      clock,
      applyEffects: async (record) => {
        if (failures-- > 0) throw new Error("data store down");
        applied.push(record.id);
      },
    });
    await collector.start();
    running.push(collector);
    const targets = nodes.fleet.map((n) => n.identity);
    const { job, subject, replies } = await jobWithReplies(nodes, store, targets, {
      effects: { locks: [{ name: "deploy", token: "t1" }], data: [] },
    });
    await Promise.all(replies.map((r) => source.deliver(subject, r)));
    const inIndex = async () => {
      for await (const run of store.runIndex()) if (run.id === job.id) return true;
      return false;
    };
    await waitFor(
      clock,
      async () => (await store.get(job.id))!.record.effects?.done === true && !(await inIndex()),
    );
    expect((await store.get(job.id))?.record.effects).toMatchObject({ done: true });
    expect(applied).toEqual([job.id]);
    expect(collector.stats).toMatchObject({ effects_failures: 1, effects_applied: 1 });
    expect(await inIndex()).toBe(false);
  });
});

// Issue 12: replies nested too deep, in the transport or in the RPC data a node (or anyone on the
// collective) sends back, are refused on their bytes, counted and logged at most once a minute.
describe("the collector and deeply nested replies", () => {
  const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

  it("refuses them as too_deep and logs once; the same reply nested shallowly is stored", async () => {
    const nodes = await simulatedNodes(3);
    const store = new JobStore(new MemoryKvBucket());
    const source = new HandSource();
    const logged: string[] = [];
    const collector = new JobRecorder({
      store,
      source,
      callbacks: callbackSender({}),
      retryPolicy: POLICY,
      sweepIntervalMs: 20,
      log: (_level, message, fields) => logged.push(`${message} ${JSON.stringify(fields)}`),
    });
    await collector.start();
    running.push(collector);
    const targets = nodes.fleet.map((n) => n.identity);
    const { job, subject, replies } = await jobWithReplies(nodes, store, targets);

    const deepHeader = replies[0]!.replace(/}}$/, `,"x":${nested(5000)}}}`);
    const deepData = await forgedReply(replies[1]!, { data: `{"deep":${nested(5000)}}` });
    // The same change at a harmless depth is stored: only the depth is refused.
    const shallowData = await forgedReply(replies[2]!, { data: `{"deep":${nested(10)}}` });
    expect(await source.deliver(subject, deepHeader)).toBe("done");
    expect(await source.deliver(subject, deepData)).toBe("done");
    expect(await source.deliver(subject, deepData)).toBe("done");
    expect(await source.deliver(subject, shallowData)).toBe("done");
    expect(collector.stats).toMatchObject({ too_deep: 3, invalid: 0, stored: 1, retried: 0 });
    expect((await store.get(job.id))?.record.counts.ok).toBe(1);
    expect(logged.filter((line) => line.includes('"too_deep"'))).toHaveLength(1);
    expect(logged.join("\n")).not.toContain("Maximum call stack");
  });
});
