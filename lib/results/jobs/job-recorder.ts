import { type NodeReply, openReply, openReplySync, type ReplyDigest } from "../../client/mod.ts";
import { type Clock, realClock } from "../../clock/mod.ts";
import { type Logger, ThrottledLog } from "../../log/mod.ts";
import type { CapturedReply, ReplyDisposition, ReplySource } from "../../transport/mod.ts";
import {
  type CallbackSender,
  callbackMessage,
  claimAttempt,
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
  recordAttempt,
} from "./callbacks.ts";
import { endJob, type Tally } from "./lifecycle.ts";
import {
  addCounts,
  addResult,
  addToCounts,
  type EndReason,
  emptyCounts,
  isComplete,
  type JobCounts,
  type JobRecord,
  MAX_CONFLICTING_LISTED,
  resultOfReply,
  type StoredResult,
} from "./model.ts";
import type { JobStore } from "./store.ts";
import { jobIdOfSubject } from "./subjects.ts";

export interface JobRecorderOptions {
  store: JobStore;
  source: ReplySource;
  callbacks: CallbackSender;
  retryPolicy?: RetryPolicy;
  /** How often the run index is checked for deadlines, unsettled ends and due callbacks (±25% jitter). */
  sweepIntervalMs?: number;
  /** A run-index entry whose job record never appeared is dropped after this long. */
  orphanAfterMs?: number;
  /** Target identities (plus one per job) kept in memory for recent jobs; 200,000 by default. */
  jobCacheSize?: number;
  /** How long a cached job's state is trusted before it is read again. */
  jobCacheMs?: number;
  /** Largest reply accepted, in bytes. */
  maxReplyBytes?: number;
  /**
   * Checks reply hashes with this synchronous SHA-256 (Node's `createHash`) instead of WebCrypto, whose
   * promise per reply costs more than the hash itself.
   */
  replyDigest?: ReplyDigest;
  /**
   * Carries out a settled job's effects (its trigger's locks released, `on_complete` writes): must be safe
   * to run more than once, as two collectors may both get there. Without it effects are left undone and
   * locks run out by themselves.
   */
  applyEffects?: (record: JobRecord) => Promise<void>;
  log?: Logger;
  /** Times sweeps, callback retries and deadlines; the real clock by default. */
  clock?: Clock;
}

export interface CollectorStats {
  /** Replies handed to this collector, redeliveries included. */
  received: number;
  stored: number;
  /** The same reply again from a node that already has a result (a redelivery, a replay). */
  duplicates: number;
  /**
   * A reply from a node that already has a result, with another message: a forgery, or the node's own
   * reply after a forged one (v1 replies are hashed, not signed). Kept beside the result and counted.
   */
  conflicts: number;
  /** Not a reply, a reply that fails its hash, or a reply to another request than its job's. */
  invalid: number;
  /** A reply nested deeper than MAX_JSON_DEPTH in any layer, refused on its bytes before it is walked. */
  too_deep: number;
  /** A reply for a job that does not exist (expired, or never made). */
  unknown_job: number;
  /** A reply for a job that has ended. */
  late: number;
  /** Replies handed back to be tried again because the store could not be reached. */
  retried: number;
  callbacks_delivered: number;
  callback_failures: number;
  effects_applied: number;
  effects_failures: number;
}

type Refusal = "invalid" | "too_deep" | "unknown_job" | "late";

/** A reply waiting for its batch, and how to answer it. */
interface Queued {
  reply: CapturedReply;
  resolve(disposition: ReplyDisposition): void;
}

function bump(tally: Map<string, number>, key: string): void {
  tally.set(key, (tally.get(key) ?? 0) + 1);
}

/** Runs `task` on a later turn of the event loop, once what has arrived by now has been taken in. */
function nextTurn(task: () => void): void {
  if (typeof setImmediate === "function") setImmediate(task);
  else setTimeout(task, 0);
}

/**
 * The async result collector: stores each reply under its job, keeps the job's counts, ends jobs (all
 * expected answered, deadline passed) and delivers their completion callbacks. Any number of instances
 * share the work: replies through the source's queue or consumer, everything else through compare-and-set
 * on the job record, so it does not matter which instance does what, or whether one restarts.
 */
export class JobRecorder {
  /**
   * What /metrics counts beyond `stats`: callback attempts by outcome class, and the jobs this instance
   * saw settle, by final state (with several instances racing to end one job, more than one may count it).
   */
  readonly tallies = { callbackAttempts: new Map<string, number>(), jobsEnded: new Map<string, number>() };
  readonly stats: CollectorStats = {
    received: 0,
    stored: 0,
    duplicates: 0,
    conflicts: 0,
    invalid: 0,
    too_deep: 0,
    unknown_job: 0,
    late: 0,
    retried: 0,
    callbacks_delivered: 0,
    callback_failures: 0,
    effects_applied: 0,
    effects_failures: 0,
  };
  readonly #store: JobStore;
  readonly #source: ReplySource;
  readonly #callbacks: CallbackSender;
  readonly #policy: RetryPolicy;
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #log: Logger;
  readonly #throttled: ThrottledLog;
  readonly #jobs: JobCache;
  readonly #counts: CountBatcher;
  readonly #own: OwnTallies;
  readonly #sweepIntervalMs: number;
  readonly #orphanAfterMs: number;
  readonly #maxReplyBytes: number;
  readonly #digest: ReplyDigest | undefined;
  #queued: Queued[] = [];
  readonly #applyEffects: ((record: JobRecord) => Promise<void>) | undefined;
  readonly #tasks = new Set<Promise<unknown>>();
  readonly #ending = new Map<string, Promise<JobRecord | undefined>>();
  readonly #delivering = new Set<string>();
  readonly #applying = new Set<string>();
  readonly #retryTimers = new Map<string, () => void>();
  #cancelSweep = () => {};
  #sweeping: Promise<void> | undefined;
  #stopped = false;

  constructor(options: JobRecorderOptions) {
    this.#store = options.store;
    this.#source = options.source;
    this.#callbacks = options.callbacks;
    this.#policy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
    this.#clock = options.clock ?? realClock;
    this.#now = () => this.#clock.now();
    this.#log = options.log ?? (() => {});
    this.#throttled = new ThrottledLog(this.#log, 60_000, this.#now);
    this.#jobs = new JobCache(
      options.store,
      options.jobCacheSize ?? 200_000,
      options.jobCacheMs ?? 5000,
      this.#now,
    );
    this.#counts = new CountBatcher(options.store);
    this.#own = new OwnTallies(options.jobCacheSize ?? 200_000);
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 1000;
    this.#orphanAfterMs = options.orphanAfterMs ?? 60_000;
    this.#maxReplyBytes = options.maxReplyBytes ?? 1024 * 1024;
    this.#digest = options.replyDigest;
    this.#applyEffects = options.applyEffects;
  }

  async start(): Promise<void> {
    await this.#source.start((reply) => this.#handle(reply));
    this.#scheduleSweep();
  }

  /** Stops taking replies, finishes what is in hand (stores, ends, attempts under way). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#cancelSweep();
    for (const cancel of this.#retryTimers.values()) cancel();
    this.#retryTimers.clear();
    await this.#source.stop();
    // A sweep holds nothing another sweep would not redo; one waiting on a request lost in a NATS outage
    // (up to the request timeout) need not hold the stop up.
    if (this.#sweeping !== undefined) {
      let cancel = () => {};
      await Promise.race([
        this.#sweeping,
        new Promise<void>((resolve) => (cancel = this.#clock.after(1000, resolve))),
      ]);
      cancel();
    }
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  /**
   * One pass over the run index: ends jobs past their deadline (once every reply that arrived before the
   * deadline has been handled), finishes ends that another instance left half-done, attempts due
   * callbacks, and drops jobs with nothing left to do from the index.
   */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweepOnce()
      .catch((err: unknown) => this.#log("error", "sweep failed", { error: String(err) }))
      .finally(() => {
        this.#sweeping = undefined;
      });
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    const now = this.#now();
    const settledThrough = await this.#source.settledThrough();
    for await (const run of this.#store.runIndex()) {
      if (this.#stopped) return;
      const current = await this.#store.get(run.id);
      if (this.#stopped) return;
      if (current === undefined) {
        if (now - run.since > this.#orphanAfterMs) await this.#store.removeFromRunIndex(run.id);
        continue;
      }
      const record = current.record;
      if (record.state === "running") {
        const deadline = Date.parse(record.deadline_at);
        if (deadline <= now && deadline <= settledThrough) this.#end(run.id, "deadline");
      } else if (!record.settled) {
        this.#end(run.id, "deadline");
      } else {
        this.#track(this.#afterEnd(record));
      }
    }
  }

  #scheduleSweep(): void {
    if (this.#stopped) return;
    const delay = this.#sweepIntervalMs * (0.75 + Math.random() / 2);
    this.#cancelSweep = this.#clock.after(delay, () => void this.sweep().then(() => this.#scheduleSweep()), {
      unref: true,
    });
  }

  /**
   * Takes a reply into the next batch. Replies are handled in batches of what arrived together (one turn of
   * the event loop), so that their KV writes leave in one socket write, a job's count moves once per
   * batch, and their confirmations go out together; each reply still gets its own disposition.
   */
  #handle(reply: CapturedReply): Promise<ReplyDisposition> {
    return new Promise((resolve) => {
      this.#queued.push({ reply, resolve });
      if (this.#queued.length === 1) nextTurn(() => this.#runBatch());
    });
  }

  #runBatch(): void {
    const batch = this.#queued;
    this.#queued = [];
    this.#handleBatch(batch).catch((err: unknown) => {
      this.#log("error", "reply batch failed", { replies: batch.length, error: String(err) });
      // Resolving again is a no-op for replies already answered; the rest are handed out again.
      for (const item of batch) item.resolve("retry");
    });
  }

  async #handleBatch(batch: readonly Queued[]): Promise<void> {
    // Open every reply; group them by job.
    const byJob = new Map<string, { item: Queued; node: NodeReply }[]>();
    for (const item of batch) {
      this.stats.received++;
      const { reply } = item;
      const jobId = jobIdOfSubject(reply.subject);
      if (jobId === undefined) {
        item.resolve(this.#refuse("invalid", "a subject that names no job", reply.subject));
        continue;
      }
      const opened =
        this.#digest === undefined
          ? await openReply(reply.data, this.#maxReplyBytes)
          : openReplySync(reply.data, this.#digest, this.#maxReplyBytes);
      if (!opened.ok) {
        const kind = opened.error.code === "too_deep" ? "too_deep" : "invalid";
        item.resolve(this.#refuse(kind, opened.error.message, reply.subject));
        continue;
      }
      const group = byJob.get(jobId);
      if (group === undefined) byJob.set(jobId, [{ item, node: opened.value }]);
      else group.push({ item, node: opened.value });
    }
    // The jobs, from the cache as a rule.
    const jobIds = [...byJob.keys()];
    const loaded = await Promise.allSettled(jobIds.map((id) => this.#jobs.load(id)));
    // Every result's write, issued together so that they share socket writes.
    const writes: {
      jobId: string;
      stored: { item: Queued; result: StoredResult; write: Promise<number | undefined> }[];
    }[] = [];
    jobIds.forEach((jobId, n) => {
      const group = byJob.get(jobId)!;
      const load = loaded[n]!;
      if (load.status === "rejected") {
        for (const { item } of group) item.resolve(this.#retry("job record unreadable", jobId, load.reason));
        return;
      }
      const job = load.value;
      const stored: (typeof writes)[number]["stored"] = [];
      for (const { item, node } of group) {
        const { reply } = item;
        if (job === undefined) {
          item.resolve(this.#refuse("unknown_job", "no such job", reply.subject));
        } else if (node.requestId !== job.record.request_id) {
          item.resolve(this.#refuse("invalid", `a reply to request ${node.requestId}`, reply.subject));
        } else if (job.record.state !== "running") {
          this.#own.forget(jobId);
          item.resolve(this.#refuse("late", `the job is ${job.record.state}`, reply.subject));
        } else {
          const result = resultOfReply(node, {
            maxDataBytes: job.record.max_data_bytes,
            receivedAt: reply.receivedAt,
            unexpected: job.targets !== undefined && !job.targets.has(node.sender),
          });
          stored.push({ item, result, write: this.#store.putResult(jobId, result) });
        }
      }
      if (stored.length > 0) writes.push({ jobId, stored });
    });
    await Promise.all(writes.map(({ jobId, stored }) => this.#count(jobId, stored)));
  }

  /**
   * Counts a job's newly stored results of one batch, and the conflicting replies newly kept, in one write
   * of its record.
   */
  async #count(
    jobId: string,
    stored: readonly { item: Queued; result: StoredResult; write: Promise<number | undefined> }[],
  ): Promise<void> {
    let delta = emptyCounts();
    const counted: Queued[] = [];
    const fresh: { result: StoredResult; seq: number }[] = [];
    const taken: { item: Queued; result: StoredResult }[] = [];
    const outcomes = await Promise.allSettled(stored.map((s) => s.write));
    stored.forEach(({ item, result }, n) => {
      const outcome = outcomes[n]!;
      if (outcome.status === "rejected") {
        item.resolve(this.#retry("result not stored", jobId, outcome.reason));
      } else if (outcome.value === undefined) {
        taken.push({ item, result });
      } else {
        this.stats.stored++;
        delta = addResult(delta, result);
        counted.push(item);
        fresh.push({ result, seq: outcome.value });
      }
    });
    const conflicting = taken.length === 0 ? [] : await this.#conflicts(jobId, taken);
    for (const { item } of conflicting) counted.push(item);
    delta = { ...delta, conflicts: conflicting.length };
    const identities = conflicting.map((c) => c.identity);
    if (counted.length === 0) return;
    let outcome: Counted | undefined;
    try {
      outcome = await this.#counts.add(jobId, delta, identities);
    } catch (err) {
      for (const item of counted) item.resolve(this.#retry("counts not updated", jobId, err));
      return;
    }
    if (outcome?.counted) this.#own.add(jobId, fresh, identities);
    const latest = outcome?.record;
    if (latest !== undefined) {
      this.#jobs.refresh(latest);
      if (latest.state === "running" && isComplete(latest)) this.#end(jobId, "expected");
    }
    for (const item of counted) item.resolve("done");
  }

  /**
   * Replies from nodes that already have a result. The same reply again (same message hash) is a
   * duplicate; another is a conflict, kept beside the result (the first per node). Answers all but the
   * conflicts newly kept, which the caller counts.
   */
  async #conflicts(
    jobId: string,
    taken: readonly { item: Queued; result: StoredResult }[],
  ): Promise<{ item: Queued; identity: string }[]> {
    // Handed out again after an attempt that stored it but may not have counted it: let the stored
    // results decide.
    const again = (item: Queued) => {
      if (item.reply.redelivered) this.#end(jobId, "expected");
      item.resolve("done");
    };
    const reads = await Promise.allSettled(
      taken.map(({ result }) => this.#store.result(jobId, result.identity)),
    );
    const differing: { item: Queued; result: StoredResult; write: Promise<number | undefined> }[] = [];
    taken.forEach(({ item, result }, n) => {
      const read = reads[n]!;
      if (read.status === "rejected") {
        item.resolve(this.#retry("stored result unreadable", jobId, read.reason));
        return;
      }
      // A no_reply mark, or a result stored before hashes were kept, cannot be told apart.
      const storedHash = read.value?.hash;
      if (storedHash === undefined || storedHash === result.hash) {
        if (!item.reply.redelivered) this.stats.duplicates++;
        again(item);
        return;
      }
      this.stats.conflicts++;
      this.#throttled.note("conflict", "warn", "a node's reply conflicts with its stored result", {
        job: jobId,
        identity: result.identity,
        subject: item.reply.subject,
      });
      differing.push({ item, result, write: this.#store.putConflict(jobId, result) });
    });
    const kept = await Promise.allSettled(differing.map((d) => d.write));
    const fresh: { item: Queued; identity: string }[] = [];
    differing.forEach(({ item, result }, n) => {
      const outcome = kept[n]!;
      if (outcome.status === "rejected")
        item.resolve(this.#retry("conflict not kept", jobId, outcome.reason));
      // The node has a conflicting reply kept already: this one is only logged.
      else if (outcome.value === undefined) again(item);
      else fresh.push({ item, identity: result.identity });
    });
    return fresh;
  }

  #refuse(kind: Refusal, detail: string, subject: string): ReplyDisposition {
    this.stats[kind]++;
    this.#throttled.note(kind, "warn", "reply not stored", { reason: kind, detail, subject });
    return "done";
  }

  #retry(what: string, jobId: string, err: unknown): ReplyDisposition {
    this.stats.retried++;
    this.#throttled.note("retry", "warn", "reply will be retried", { job: jobId, what, error: String(err) });
    return "retry";
  }

  /** Ends the job (once per job at a time in this process), then goes on to its callback. */
  #end(id: string, reason: EndReason): Promise<JobRecord | undefined> {
    const running = this.#ending.get(id);
    if (running !== undefined) return running;
    const task = endJob(this.#store, id, reason, { now: this.#now, known: () => this.#own.snapshot(id) })
      .then(async (record) => {
        if (record?.settled) {
          bump(this.tallies.jobsEnded, record.state);
          this.#own.forget(id);
          this.#jobs.refresh(record);
          await this.#afterEnd(record);
        }
        return record;
      })
      .catch((err: unknown) => {
        this.#log("error", "ending a job failed", { job: id, reason, error: String(err) });
        return undefined;
      })
      .finally(() => this.#ending.delete(id));
    this.#ending.set(id, task);
    this.#track(task);
    return task;
  }

  /** What a settled job still needs: its effects, its callback; then it leaves the run index. */
  async #afterEnd(record: JobRecord): Promise<void> {
    const effectsDone = await this.#effects(record);
    if (record.callback?.status === "pending") await this.#deliver(record.id);
    else if (effectsDone) await this.#store.removeFromRunIndex(record.id);
  }

  /** True once the job has no effects left to carry out. */
  async #effects(record: JobRecord): Promise<boolean> {
    if (record.effects === null || record.effects.done) return true;
    if (this.#applyEffects === undefined) return true;
    if (this.#applying.has(record.id)) return false;
    this.#applying.add(record.id);
    try {
      await this.#applyEffects(record);
      await this.#store.update(record.id, (r) =>
        r.effects === null || r.effects.done ? undefined : { ...r, effects: { ...r.effects, done: true } },
      );
      this.stats.effects_applied++;
      return true;
    } catch (err) {
      // The next sweep tries again; a lock meanwhile runs out by itself.
      this.stats.effects_failures++;
      this.#throttled.note("effects", "warn", "job effects failed", { job: record.id, error: String(err) });
      return false;
    } finally {
      this.#applying.delete(record.id);
    }
  }

  /** One callback attempt, if one is due and no other collector holds the lease. */
  async #deliver(id: string): Promise<void> {
    if (this.#delivering.has(id)) return;
    this.#delivering.add(id);
    try {
      const claimed = await this.#store.update(id, (r) => claimAttempt(r, this.#now(), this.#policy));
      if (!claimed?.changed || claimed.record.callback === null) return;
      const startedAt = this.#now();
      const outcome = await this.#callbacks.send(
        claimed.record.callback.target,
        callbackMessage(claimed.record),
      );
      const durationMs = this.#now() - startedAt;
      bump(this.tallies.callbackAttempts, outcome.outcome);
      const after = await this.#store.update(id, (r) =>
        recordAttempt(r, outcome, { startedAt, durationMs }, this.#policy),
      );
      if (outcome.ok) {
        this.stats.callbacks_delivered++;
      } else {
        this.stats.callback_failures++;
        this.#log("warn", "callback attempt failed", {
          job: id,
          attempt: claimed.record.callback.attempts.length + 1,
          outcome: outcome.outcome,
          status: outcome.status,
          detail: outcome.detail,
        });
      }
      const callback = after?.record.callback;
      const effects = after?.record.effects;
      if (callback?.status === "pending" && callback.next_attempt_at !== null)
        this.#retryAt(id, Date.parse(callback.next_attempt_at));
      // Effects that failed keep the job in the index, so that a sweep tries them again.
      else if (effects === undefined || effects === null || effects.done)
        await this.#store.removeFromRunIndex(id);
    } catch (err) {
      this.#log("error", "callback delivery failed", { job: id, error: String(err) });
    } finally {
      this.#delivering.delete(id);
    }
  }

  #retryAt(id: string, at: number): void {
    if (this.#stopped) return;
    this.#retryTimers.get(id)?.();
    const cancel = this.#clock.after(
      Math.max(0, at - this.#now()),
      () => {
        this.#retryTimers.delete(id);
        this.#track(this.#deliver(id));
      },
      { unref: true },
    );
    this.#retryTimers.set(id, cancel);
  }

  #track(task: Promise<unknown>): void {
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
  }
}

interface CachedJob {
  record: JobRecord;
  /** The target identities; undefined when the job only knows a count. */
  targets: ReadonlySet<string> | undefined;
}

/**
 * Job records and target sets of recent jobs, so a reply costs no reads of its own. Bounded by weight (a
 * job weighs one plus its targets), so a few 10,000-node jobs cannot take all the memory.
 */
class JobCache {
  readonly #entries = new Map<
    string,
    { job: Promise<CachedJob | undefined>; readAt: number; weight: number }
  >();
  #weight = 0;

  constructor(
    private readonly store: JobStore,
    private readonly maxWeight: number,
    private readonly maxAgeMs: number,
    private readonly now: () => number,
  ) {}

  load(id: string): Promise<CachedJob | undefined> {
    const hit = this.#entries.get(id);
    if (hit !== undefined && this.now() - hit.readAt < this.maxAgeMs) {
      // Most recently used last, so that eviction takes the oldest.
      this.#entries.delete(id);
      this.#entries.set(id, hit);
      return hit.job;
    }
    if (hit !== undefined) this.#forget(id);
    const job = this.#read(id, hit?.job);
    const entry = { job, readAt: this.now(), weight: 0 };
    this.#entries.set(id, entry);
    job.then(
      (found) => {
        if (this.#entries.get(id) !== entry) return;
        // Nothing is kept for a job that is not there (yet).
        if (found === undefined) return this.#forget(id);
        entry.weight = 1 + (found.targets?.size ?? 0);
        this.#weight += entry.weight;
        for (const oldest of this.#entries.keys()) {
          if (this.#weight <= this.maxWeight || oldest === id) break;
          this.#forget(oldest);
        }
      },
      () => this.#entries.get(id) === entry && this.#forget(id),
    );
    return job;
  }

  /** Takes a record just written (it is at least as new as the cached one). */
  refresh(record: JobRecord): void {
    const hit = this.#entries.get(record.id);
    if (hit !== undefined) hit.job = hit.job.then((job) => job && { ...job, record });
  }

  #forget(id: string): void {
    this.#weight -= this.#entries.get(id)?.weight ?? 0;
    this.#entries.delete(id);
  }

  async #read(
    id: string,
    previous: Promise<CachedJob | undefined> | undefined,
  ): Promise<CachedJob | undefined> {
    const current = await this.store.get(id);
    if (current === undefined) return undefined;
    const record = current.record;
    if (record.targets === 0) return { record, targets: undefined };
    const known = await previous?.catch(() => undefined);
    return { record, targets: known?.targets ?? new Set(await this.store.targets(record)) };
  }
}

interface Counted {
  record: JobRecord;
  /** The delta is in the record's counts (false: the job had ended). */
  counted: boolean;
}

/**
 * What this collector stored and counted of running jobs, so that ending a job it handled alone needs no
 * read of its results (see EndOptions.known; the end checks that it is the whole). Bounded by identities
 * kept: a job dropped here is read in full when it ends, as is any job another collector also stored for.
 */
class OwnTallies {
  readonly #jobs = new Map<string, Tally>();
  #size = 0;

  constructor(private readonly maxIdentities: number) {}

  add(
    jobId: string,
    results: readonly { result: StoredResult; seq: number }[],
    conflicting: readonly string[],
  ): void {
    let own = this.#jobs.get(jobId);
    if (own === undefined) {
      own = { counts: emptyCounts(), identities: new Set(), lastSeq: 0, conflicting: [] };
      this.#jobs.set(jobId, own);
    }
    for (const { result, seq } of results) {
      own.counts = addResult(own.counts, result);
      own.identities.add(result.identity);
      own.lastSeq = Math.max(own.lastSeq, seq);
    }
    own.counts = { ...own.counts, conflicts: own.counts.conflicts + conflicting.length };
    for (const identity of conflicting)
      if (own.conflicting.length < MAX_CONFLICTING_LISTED) own.conflicting.push(identity);
    this.#size += results.length;
    for (const oldest of this.#jobs.keys()) {
      if (this.#size <= this.maxIdentities || oldest === jobId) break;
      this.forget(oldest);
    }
  }

  /** A copy: the end works on what was known when it began, while later replies go on being added. */
  snapshot(jobId: string): Tally | undefined {
    const own = this.#jobs.get(jobId);
    if (own === undefined) return undefined;
    return {
      counts: own.counts,
      identities: new Set(own.identities),
      lastSeq: own.lastSeq,
      conflicting: [...own.conflicting],
    };
  }

  forget(jobId: string): void {
    const own = this.#jobs.get(jobId);
    if (own === undefined) return;
    this.#size -= own.identities.size;
    this.#jobs.delete(jobId);
  }
}

/**
 * Adds reply counts to job records with one compare-and-set per job at a time: what arrives while a write
 * is under way goes into the next one, so a burst of replies costs a few writes, not one each.
 */
class CountBatcher {
  readonly #pending = new Map<
    string,
    {
      delta: JobCounts;
      conflicting: string[];
      waiters: { resolve(outcome: Counted | undefined): void; reject(err: unknown): void }[];
    }
  >();
  readonly #writing = new Set<string>();

  constructor(private readonly store: JobStore) {}

  /**
   * Resolves with the record that includes the delta (`counted`), or as it stands once the job has ended
   * (the delta is then left out: an ended job's counts come from its results).
   */
  add(jobId: string, delta: JobCounts, conflicting: readonly string[]): Promise<Counted | undefined> {
    return new Promise((resolve, reject) => {
      const batch = this.#pending.get(jobId);
      if (batch === undefined)
        this.#pending.set(jobId, { delta, conflicting: [...conflicting], waiters: [{ resolve, reject }] });
      else {
        batch.delta = addCounts(batch.delta, delta);
        batch.conflicting.push(...conflicting);
        batch.waiters.push({ resolve, reject });
      }
      if (!this.#writing.has(jobId)) void this.#write(jobId);
    });
  }

  async #write(jobId: string): Promise<void> {
    this.#writing.add(jobId);
    try {
      for (let batch = this.#pending.get(jobId); batch !== undefined; batch = this.#pending.get(jobId)) {
        this.#pending.delete(jobId);
        const { delta, conflicting, waiters } = batch;
        try {
          // An ended job's counts are recomputed from its results; adding to them would count twice.
          const written = await this.store.update(jobId, (r) =>
            r.state === "running" ? addToCounts(r, delta, conflicting) : undefined,
          );
          const outcome = written && { record: written.record, counted: written.changed };
          for (const waiter of waiters) waiter.resolve(outcome);
        } catch (err) {
          for (const waiter of waiters) waiter.reject(err);
        }
      }
    } finally {
      this.#writing.delete(jobId);
    }
  }
}
