import { describe, expect, it } from "vitest";
import { MemoryKvBucket } from "../../../../lib/kv/memory.ts";
import type { KvEntry, KvScanOptions } from "../../../../lib/kv/mod.ts";
import { endJob, type Tally } from "../../../../lib/results/jobs/lifecycle.ts";
import {
  addResult,
  emptyCounts,
  type JobRecord,
  noReplyResult,
  type StoredResult,
} from "../../../../lib/results/jobs/model.ts";
import { type JobEvent, JobStore } from "../../../../lib/results/jobs/store.ts";
import { newJob } from "./support.ts";

function ok(identity: string, extra: Partial<StoredResult> = {}): StoredResult {
  return {
    identity,
    status: "ok",
    statuscode: 0,
    statusmsg: "OK",
    data: { n: 1 },
    received_at: "2026-01-01T00:00:00.000Z",
    ...extra,
  };
}

function failed(identity: string): StoredResult {
  return { ...ok(identity), status: "failed", statuscode: 1, statusmsg: "Aborted" };
}

async function created(store: JobStore, overrides: Parameters<typeof newJob>[0]): Promise<JobRecord> {
  const outcome = await store.create(newJob(overrides));
  if (outcome.outcome !== "created") throw new Error(outcome.outcome);
  return outcome.job;
}

/** What a collector does with a reply: store it, then count it in the job record. */
async function storeAndCount(store: JobStore, jobId: string, result: StoredResult): Promise<void> {
  await store.putResult(jobId, result);
  await store.update(jobId, (r) =>
    r.state === "running" ? { ...r, counts: addResult(r.counts, result) } : undefined,
  );
}

/** A bucket that lets a test act once, right after the first full read of a job's results. */
class AfterFirstRead extends MemoryKvBucket {
  constructor(private act: (() => Promise<void>) | undefined) {
    super();
  }

  override async *history(filter: string, options: KvScanOptions = {}): AsyncIterable<KvEntry> {
    yield* super.history(filter, options);
    const act = this.act;
    this.act = undefined;
    await act?.();
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const identities = (n: number) => Array.from({ length: n }, (_, i) => `node${i}.example.net`);

describe("creating jobs", () => {
  it("stores the record, the targets in chunks, and an entry in the run index", async () => {
    const store = new JobStore(new MemoryKvBucket(), { targetsPerChunk: 3 });
    const job = await created(store, { request_id: "r1", targets: identities(7) });
    expect(job.state).toBe("running");
    expect(job.expected).toBe(7);
    expect((await store.get(job.id))?.record).toEqual(job);
    expect(await store.targets(job)).toEqual(identities(7));
    expect((await collect(store.runIndex())).map((r) => r.id)).toEqual([job.id]);
  });

  it("the same idempotency key from the same caller gives the same job, never a second", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const first = await store.create(newJob({ request_id: "r1" }), {
      idempotencyKey: "delivery-1",
      fingerprint: "f",
    });
    const again = await store.create(newJob({ request_id: "r2" }), {
      idempotencyKey: "delivery-1",
      fingerprint: "f",
    });
    expect(first.outcome).toBe("created");
    expect(again.outcome).toBe("existing");
    if (first.outcome !== "created" || again.outcome !== "existing") return;
    expect(again.job.id).toBe(first.job.id);
    expect(again.job.request_id).toBe("r1");
    const otherCaller = await store.create(newJob({ request_id: "r3", caller: "key-other" }), {
      idempotencyKey: "delivery-1",
    });
    expect(otherCaller.outcome).toBe("created");
    expect((await collect(store.runIndex())).length).toBe(2);
  });

  it("a key reused for a different request is a conflict", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const first = await store.create(newJob({ request_id: "r1" }), { idempotencyKey: "k", fingerprint: "a" });
    const other = await store.create(newJob({ request_id: "r2" }), { idempotencyKey: "k", fingerprint: "b" });
    expect(other).toEqual({ outcome: "conflict", jobId: first.outcome === "created" ? first.job.id : "" });
  });

  it("concurrent requests with one key make one job between them", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const outcomes = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        store.create(newJob({ request_id: `r${i}` }), { idempotencyKey: "same" }),
      ),
    );
    const ids = new Set(outcomes.map((o) => ("job" in o ? o.job.id : o.jobId)));
    expect(ids.size).toBe(1);
    expect(outcomes.filter((o) => o.outcome === "created")).toHaveLength(1);
  });

  it("a failed creation frees the idempotency key for the retry", async () => {
    const bucket = new MemoryKvBucket();
    const store = new JobStore(bucket);
    const put = bucket.put.bind(bucket);
    bucket.put = () => Promise.reject(new Error("store down"));
    await expect(
      store.create(newJob({ request_id: "r1", targets: ["a"] }), { idempotencyKey: "k" }),
    ).rejects.toThrow("store down");
    bucket.put = put;
    expect(
      (await store.create(newJob({ request_id: "r1", targets: ["a"] }), { idempotencyKey: "k" })).outcome,
    ).toBe("created");
  });
});

describe("results", () => {
  it("a node's first result wins; a second is refused", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a"] });
    expect(await store.putResult(job.id, ok("a"))).toBeTypeOf("number");
    expect(await store.putResult(job.id, failed("a"))).toBeUndefined();
    expect((await collect(store.results(job))).map((r) => r.status)).toEqual(["ok"]);
  });

  it("pages follow the cursor through every result once, in the order they were stored", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const all = identities(2500);
    const job = await created(store, { request_id: "r1", targets: all });
    for (const [i, identity] of all.entries())
      await store.putResult(job.id, i % 5 === 0 ? failed(identity) : ok(identity));
    const seen: string[] = [];
    let after = 0;
    let pages = 0;
    for (;;) {
      const page = await store.page(job, { after, limit: 1000 });
      pages++;
      seen.push(...page.results.map((r) => r.identity));
      if (page.next === null) break;
      after = page.next;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(all);
    const onlyFailed = await store.page(job, { limit: 1000, filters: new Set(["failed"]) });
    expect(onlyFailed.results).toHaveLength(500);
    expect(onlyFailed.next).toBeNull();
    expect(onlyFailed.results.every((r) => r.status === "failed")).toBe(true);
  });

  it("a full last page says there is no next one", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b"] });
    await store.putResult(job.id, ok("a"));
    await store.putResult(job.id, ok("b"));
    const page = await store.page(job, { limit: 2 });
    expect(page.results).toHaveLength(2);
    expect(page.next).toBeNull();
  });
});

describe("ending jobs", () => {
  it("at the deadline, silent targets get no_reply and the counts come from the stored results", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b", "c", "d"] });
    await store.putResult(job.id, ok("a"));
    await store.putResult(job.id, failed("b"));
    await store.putResult(job.id, ok("z", { unexpected: true }));
    const ended = await endJob(store, job.id, "deadline", { now: () => 5000 });
    expect(ended).toMatchObject({
      state: "timed_out",
      settled: true,
      finished_at: "1970-01-01T00:00:05.000Z",
      counts: { ok: 2, failed: 1, no_reply: 2, unexpected: 1 },
    });
    const results = await collect(store.results(ended!));
    expect(results.filter((r) => r.status === "no_reply").map((r) => r.identity)).toEqual(["c", "d"]);
    expect(ended?.settled_seq).toBe(results.at(-1)?.seq);
  });

  it("a reply stored after the job settled is not part of it", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", expect: 2 });
    await store.putResult(job.id, ok("a"));
    const ended = await endJob(store, job.id, "deadline");
    await store.putResult(job.id, ok("late"));
    expect((await collect(store.results(ended!))).map((r) => r.identity)).toEqual(["a"]);
    expect(ended?.counts).toEqual({ ok: 1, failed: 0, no_reply: 1, unexpected: 0, conflicts: 0 });
  });

  it("a reply counted while the ender reads is in the settled job, in its counts and in its cut", async () => {
    let store: JobStore | undefined;
    let jobId = "";
    const bucket = new AfterFirstRead(() => storeAndCount(store!, jobId, ok("b")));
    store = new JobStore(bucket);
    const job = await created(store, { request_id: "r1", expect: 2 });
    jobId = job.id;
    await storeAndCount(store, job.id, ok("a"));
    const ended = await endJob(store, job.id, "deadline");
    expect(ended).toMatchObject({ state: "complete", settled: true, counts: { ok: 2, no_reply: 0 } });
    expect((await collect(store.results(ended!))).map((r) => r.identity)).toEqual(["a", "b"]);
  });

  it("a no_reply mark and a late reply race for one key: whichever is stored first is the result", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a"] });
    await store.putResult(job.id, noReplyResult("a"));
    expect(await store.putResult(job.id, ok("a"))).toBeUndefined();
  });

  it("`expected` ends the job complete when every target answered, in one read and one write", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b"] });
    await store.putResult(job.id, ok("a"));
    await store.putResult(job.id, ok("b"));
    const ended = await endJob(store, job.id, "expected");
    expect(ended).toMatchObject({ state: "complete", settled: true, counts: { ok: 2, no_reply: 0 } });
  });

  it("a writer's own tally stands in for reading the results only when it is all of them", async () => {
    /** Counts full reads of results. */
    class Reads extends MemoryKvBucket {
      reads = 0;
      override history(filter: string, options: KvScanOptions = {}): AsyncIterable<KvEntry> {
        if (filter.endsWith(".r.*")) this.reads++;
        return super.history(filter, options);
      }
    }
    /** Stores and counts results as a collector does, keeping what it wrote (the collector's tally). */
    async function writer(store: JobStore, jobId: string, results: StoredResult[]): Promise<Tally> {
      const own: Tally = { counts: emptyCounts(), identities: new Set(), lastSeq: 0, conflicting: [] };
      for (const result of results) {
        const seq = (await store.putResult(jobId, result))!;
        await store.update(jobId, (r) => ({ ...r, counts: addResult(r.counts, result) }));
        own.counts = addResult(own.counts, result);
        own.identities.add(result.identity);
        own.lastSeq = seq;
      }
      return own;
    }

    // Alone: no read, and the same settled job as a read would give.
    const alone = new Reads();
    const store = new JobStore(alone);
    const job = await created(store, { request_id: "r1", targets: ["a", "b", "c"] });
    const own = await writer(store, job.id, [ok("a"), failed("b"), ok("c", { unexpected: true })]);
    const ended = await endJob(store, job.id, "deadline", { known: () => own });
    expect(alone.reads).toBe(0);
    const reference = new JobStore(new MemoryKvBucket());
    const again = await created(reference, { request_id: "r1", targets: ["a", "b", "c"] });
    await writer(reference, again.id, [ok("a"), failed("b"), ok("c", { unexpected: true })]);
    const read = await endJob(reference, again.id, "deadline");
    expect(ended).toMatchObject({ state: read!.state, counts: read!.counts, settled: true });
    expect(ended!.settled_seq! - ended!.first_seq).toBe(read!.settled_seq! - read!.first_seq);

    // Another writer stored a result it never counted: the tally is not the whole, so the results are read.
    const shared = new Reads();
    const both = new JobStore(shared);
    const second = await created(both, { request_id: "r1", targets: ["a", "b"] });
    const mine = await writer(both, second.id, [ok("a")]);
    await both.putResult(second.id, ok("b"));
    const settled = await endJob(both, second.id, "deadline", { known: () => mine });
    expect(shared.reads).toBeGreaterThan(0);
    expect(settled).toMatchObject({ state: "complete", counts: { ok: 2, no_reply: 0 } });
  });

  it("`expected` with counts that ran ahead of the stored results sets the counts right and keeps running", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b"] });
    await store.putResult(job.id, ok("a"));
    await store.update(job.id, (r) => ({ ...r, counts: { ...r.counts, ok: 2 } }));
    const after = await endJob(store, job.id, "expected");
    expect(after).toMatchObject({ state: "running", counts: { ok: 1 } });
  });

  it("cancel stops the job and marks everyone still out; ending again changes nothing", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b"] });
    await store.putResult(job.id, ok("a"));
    const cancelled = await endJob(store, job.id, "cancel");
    expect(cancelled).toMatchObject({ state: "cancelled", counts: { ok: 1, no_reply: 1 } });
    expect(await endJob(store, job.id, "deadline")).toEqual(cancelled);
  });

  it("several enders at once agree on one end", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: identities(50) });
    for (const identity of identities(20)) await store.putResult(job.id, ok(identity));
    const ends = await Promise.all([
      endJob(store, job.id, "deadline"),
      endJob(store, job.id, "cancel"),
      endJob(store, job.id, "deadline"),
    ]);
    const final = (await store.get(job.id))?.record;
    expect(final?.settled).toBe(true);
    expect(final?.counts).toEqual({ ok: 20, failed: 0, no_reply: 30, unexpected: 0, conflicts: 0 });
    for (const end of ends) expect(end?.state).toBe(final?.state);
    expect((await collect(store.results(final!))).length).toBe(50);
  });

  it("a job whose end was decided but not settled (an ender died) is settled by the next one", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b"] });
    await store.update(job.id, (r) => ({ ...r, state: "timed_out", finished_at: new Date().toISOString() }));
    const settled = await endJob(store, job.id, "deadline");
    expect(settled).toMatchObject({ state: "timed_out", settled: true, counts: { no_reply: 2 } });
  });
});

/**
 * The memory bucket's watch runs on promises alone: one turn of the event loop lets a reader take in
 * every write so far.
 */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe("events", () => {
  it("streams results as they are stored, then the end; a resume starts after the last event seen", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b", "c"] });
    await storeAndCount(store, job.id, ok("a"));
    const stop = new AbortController();
    const seen: JobEvent[] = [];
    const reading = (async () => {
      for await (const event of store.events(job, { signal: stop.signal })) {
        seen.push(event);
        if (event.type === "result" && event.result.identity === "b") void endJob(store, job.id, "deadline");
      }
    })();
    await turn();
    await storeAndCount(store, job.id, failed("b"));
    await reading;
    expect(
      seen.map((e) => (e.type === "result" ? `${e.result.identity}:${e.result.status}` : "end")),
    ).toEqual(["a:ok", "b:failed", "c:no_reply", "end"]);
    const first = seen[0]!;
    const settled = (await store.get(job.id))!.record;
    const resumed = await collect(
      store.events(settled, { after: first.type === "result" ? first.result.seq : 0, signal: stop.signal }),
    );
    expect(resumed.map((e) => (e.type === "result" ? e.result.identity : "end"))).toEqual(["b", "c", "end"]);
  });

  it("shows a reply stored as the job ended only when the job's final cut has it", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b"] });
    await storeAndCount(store, job.id, ok("a"));
    const reading = collect(store.events(job, { signal: new AbortController().signal }));
    // An ender read the results with only a in them; b is stored before its settled record is written.
    const [first] = await collect(store.results(job));
    await store.putResult(job.id, ok("b"));
    await store.update(job.id, (r) => ({
      ...r,
      state: "timed_out",
      settled: true,
      settled_seq: first!.seq,
      counts: addResult(emptyCounts(), ok("a")),
    }));
    const seen = await reading;
    expect(seen.map((e) => (e.type === "result" ? e.result.identity : "end"))).toEqual(["a", "end"]);
  });

  it("holds a stored reply back until the job record counts it", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a", "b"] });
    const stop = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const event of store.events(job, { signal: stop.signal }))
        if (event.type === "result") seen.push(event.result.identity);
    })();
    await store.putResult(job.id, ok("a"));
    await turn();
    expect(seen).toEqual([]);
    await store.update(job.id, (r) => ({ ...r, counts: addResult(r.counts, ok("a")) }));
    await turn();
    expect(seen).toEqual(["a"]);
    stop.abort();
    await reading;
  });

  it("stops when its signal aborts", async () => {
    const store = new JobStore(new MemoryKvBucket());
    const job = await created(store, { request_id: "r1", targets: ["a"] });
    const stop = new AbortController();
    const reading = collect(store.events(job, { signal: stop.signal }));
    await turn();
    stop.abort();
    expect(await reading).toEqual([]);
  });
});
