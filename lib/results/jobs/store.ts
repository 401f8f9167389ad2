import { type Clock, realClock, sleep } from "../../clock/mod.ts";
import type { KvBucket } from "../../kv/mod.ts";
import {
  conflictKey,
  conflictsFilter,
  idempotencyKey,
  isResultKey,
  jobFilter,
  META_FILTER,
  metaKey,
  RUN_FILTER,
  resultKey,
  resultsFilter,
  runKey,
  targetsKey,
} from "./keys.ts";
import {
  type JobRecord,
  type JobResult,
  matchesFilters,
  type NewJob,
  newJobRecord,
  type ResultFilter,
  type ResultTally,
  readJobRecord,
  readResult,
  readResultTally,
  type StoredResult,
  withSeq,
} from "./model.ts";
import { newJobId } from "./subjects.ts";

export type CreateOutcome =
  | { outcome: "created"; job: JobRecord }
  /** The Idempotency-Key was used before by this caller for the same request: that job, not a new one. */
  | { outcome: "existing"; job: JobRecord }
  /** The Idempotency-Key was used before by this caller for a different request. */
  | { outcome: "conflict"; jobId: string }
  /** A concurrent request with the same key claimed it and has not finished creating its job yet. */
  | { outcome: "in_progress"; jobId: string };

export interface CreateOptions {
  /** The caller's Idempotency-Key (or a webhook's delivery id): one job per key and caller. */
  idempotencyKey?: string;
  /** A digest of what was asked, so that a key reused for another request is refused, not answered. */
  fingerprint?: string;
}

export interface ResultPage {
  results: JobResult[];
  /** The cursor for the next page (the last result's seq), or null when there are no more. */
  next: number | null;
}

export interface JobListQuery {
  /** Only jobs created before the one with this first_seq: the cursor of the page before. */
  before?: number;
  limit: number;
  /** Which jobs count (state, trigger, age, the caller's right to read them). */
  include: (record: JobRecord) => boolean | Promise<boolean>;
}

export interface JobList {
  /** Newest first, by creation (first_seq). */
  jobs: JobRecord[];
  /** The cursor of the next page (the last job's first_seq), or null when there are no more. */
  next: number | null;
  /** Records that did not read as jobs, left out. */
  unreadable: number;
}

export type JobEvent = { type: "result"; result: JobResult } | { type: "end"; job: JobRecord };

export interface RunEntry {
  id: string;
  /** When the job's creation began (ms since the epoch). */
  since: number;
}

export interface JobStoreOptions {
  /** Stamps jobs and times the wait for a concurrent create; the real clock by default. */
  clock?: Clock;
  /** Target identities per KV value. */
  targetsPerChunk?: number;
  /** Compare-and-set attempts before an update gives up. */
  maxUpdateAttempts?: number;
  /** How long create() waits for a concurrent request's job to appear before answering in_progress. */
  claimWaitMs?: number;
}

/** A job record update did not settle after many concurrent writers kept moving it. */
export class UpdateContention extends Error {
  override readonly name = "UpdateContention";
}

/** A stored document that does not read as what its key says it is. */
export class CorruptEntry extends Error {
  override readonly name = "CorruptEntry";
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Jobs and their results in a key-value bucket (layout in keys.ts). Every method is safe to call from
 * several collector and gateway instances at once: single writes use create, and the job record changes
 * only by compare-and-set on its revision.
 */
export class JobStore {
  readonly #clock: Clock;
  readonly #chunk: number;
  readonly #maxAttempts: number;
  readonly #claimWaitMs: number;

  constructor(
    readonly bucket: KvBucket,
    options: JobStoreOptions = {},
  ) {
    this.#clock = options.clock ?? realClock;
    this.#chunk = options.targetsPerChunk ?? 2000;
    this.#maxAttempts = options.maxUpdateAttempts ?? 100;
    this.#claimWaitMs = options.claimWaitMs ?? 2000;
  }

  /**
   * Creates a job, or with an idempotency key returns the one made before for it. Write the job before
   * publishing its request, so that no reply can arrive for a job that does not exist yet.
   */
  async create(job: NewJob, options: CreateOptions = {}): Promise<CreateOutcome> {
    const id = newJobId();
    let claim: string | undefined;
    if (options.idempotencyKey !== undefined) {
      claim = await idempotencyKey(job.caller, options.idempotencyKey);
      const value = JSON.stringify({ job_id: id, fingerprint: options.fingerprint ?? null });
      if ((await this.bucket.create(claim, value)) === undefined) return this.#claimed(claim, options);
    }
    try {
      const now = this.#clock.now();
      const firstSeq = await this.bucket.create(runKey(id), JSON.stringify({ since: now }));
      if (firstSeq === undefined) throw new Error(`job id ${id} is taken`);
      const targets = job.targets ?? [];
      const writes: Promise<number>[] = [];
      for (let start = 0; start < targets.length; start += this.#chunk)
        writes.push(
          this.bucket.put(
            targetsKey(id, start / this.#chunk),
            JSON.stringify(targets.slice(start, start + this.#chunk)),
          ),
        );
      await Promise.all(writes);
      const record = newJobRecord(id, job, now, firstSeq);
      await this.bucket.create(metaKey(id), JSON.stringify(record));
      return { outcome: "created", job: record };
    } catch (err) {
      // Free the key, so that the caller's retry makes the job instead of waiting on one that never came.
      if (claim !== undefined) await this.bucket.delete(claim).catch(() => {});
      throw err;
    }
  }

  /**
   * What an earlier create with this caller's idempotency key made, or undefined when the key is unused:
   * asked before the costly part of a request (discovery), so that a repeat does none of it. `create`
   * still settles a race between two first uses.
   */
  async findClaimed(caller: string, options: Required<CreateOptions>): Promise<CreateOutcome | undefined> {
    const claim = await idempotencyKey(caller, options.idempotencyKey);
    if ((await this.bucket.get(claim)) === undefined) return undefined;
    return this.#claimed(claim, options);
  }

  async #claimed(claim: string, options: CreateOptions): Promise<CreateOutcome> {
    const entry = await this.bucket.get(claim);
    if (entry === undefined) throw new Error("idempotency claim vanished while it was read");
    const held = JSON.parse(decoder.decode(entry.value)) as { job_id: string; fingerprint: string | null };
    if (
      held.fingerprint !== null &&
      options.fingerprint !== undefined &&
      held.fingerprint !== options.fingerprint
    )
      return { outcome: "conflict", jobId: held.job_id };
    const deadline = this.#clock.now() + this.#claimWaitMs;
    for (;;) {
      const existing = await this.get(held.job_id);
      if (existing !== undefined) return { outcome: "existing", job: existing.record };
      if (this.#clock.now() >= deadline) return { outcome: "in_progress", jobId: held.job_id };
      await sleep(this.#clock, 50);
    }
  }

  /** The job record and its revision; undefined when there is no such job (or it expired). */
  async get(id: string): Promise<{ record: JobRecord; revision: number } | undefined> {
    const entry = await this.bucket.get(metaKey(id));
    if (entry === undefined) return undefined;
    const read = readJobRecord(entry.value);
    if (!read.ok) throw new CorruptEntry(`job ${id}: ${read.error}`);
    return { record: read.value, revision: entry.revision };
  }

  /**
   * Changes the job record by compare-and-set: `change` gets the current record and returns the new one,
   * or undefined to leave it. Retried from a fresh read when another writer got there first.
   */
  async update(
    id: string,
    change: (record: JobRecord) => JobRecord | undefined,
  ): Promise<{ record: JobRecord; changed: boolean } | undefined> {
    for (let attempt = 0; attempt < this.#maxAttempts; attempt++) {
      const current = await this.get(id);
      if (current === undefined) return undefined;
      const next = change(current.record);
      if (next === undefined) return { record: current.record, changed: false };
      if ((await this.bucket.update(metaKey(id), JSON.stringify(next), current.revision)) !== undefined)
        return { record: next, changed: true };
    }
    throw new UpdateContention(`job ${id}: no update after ${this.#maxAttempts} attempts`);
  }

  /** The identities the job's request went to, in the order given. */
  async targets(record: JobRecord): Promise<string[]> {
    const chunks = Math.ceil(record.targets / this.#chunk);
    const entries = await Promise.all(
      Array.from({ length: chunks }, (_, n) => this.bucket.get(targetsKey(record.id, n))),
    );
    return entries.flatMap((entry, n) => {
      if (entry === undefined) throw new CorruptEntry(`job ${record.id}: targets chunk ${n} is missing`);
      return JSON.parse(decoder.decode(entry.value)) as string[];
    });
  }

  /** Stores one node's result unless the node has one already; its revision, or undefined when it had. */
  putResult(jobId: string, result: StoredResult): Promise<number | undefined> {
    return this.bucket.create(resultKey(jobId, result.identity), encoder.encode(JSON.stringify(result)));
  }

  /** The result stored for `identity`, undefined when there is none. */
  async result(jobId: string, identity: string): Promise<StoredResult | undefined> {
    const entry = await this.bucket.get(resultKey(jobId, identity));
    if (entry === undefined) return undefined;
    const read = readResult(entry.value);
    if (!read.ok) throw new CorruptEntry(`job ${jobId}, result of ${identity}: ${read.error}`);
    return read.value;
  }

  /**
   * Keeps a reply that conflicts with the node's stored result, unless one is kept for the node already;
   * its revision, or undefined when there was one.
   */
  putConflict(jobId: string, result: StoredResult): Promise<number | undefined> {
    return this.bucket.create(conflictKey(jobId, result.identity), encoder.encode(JSON.stringify(result)));
  }

  /** The identities with a conflicting reply kept, in the order they were kept. */
  async *conflicts(record: JobRecord): AsyncIterable<string> {
    for await (const entry of this.bucket.history(conflictsFilter(record.id), {
      fromRevision: record.first_seq + 1,
    })) {
      if (entry.operation !== "PUT") continue;
      const read = readResultTally(entry.value);
      if (!read.ok) throw new CorruptEntry(`job ${record.id}, conflict at ${entry.revision}: ${read.error}`);
      yield read.value.identity;
    }
  }

  /** How many conflicting replies are kept, as countResults counts; undefined when the bucket cannot. */
  async countConflicts(record: JobRecord): Promise<number | undefined> {
    return this.bucket.count?.(conflictsFilter(record.id));
  }

  /**
   * The job's results in the order they were stored, after revision `after`. A settled job's results end
   * at its settled_seq: anything stored later arrived after the job had ended.
   */
  async *results(record: JobRecord, after = 0): AsyncIterable<JobResult> {
    const end = record.settled_seq ?? Number.POSITIVE_INFINITY;
    for await (const entry of this.bucket.history(resultsFilter(record.id), {
      fromRevision: Math.max(after, record.first_seq) + 1,
    })) {
      if (entry.revision > end) return;
      if (entry.operation !== "PUT") continue;
      yield readStoredResult(record.id, entry.value, entry.revision);
    }
  }

  /**
   * What `results` reads, only as much of each as counting needs (identity, status, unexpected) and its
   * revision: for ending a job, which reads every result.
   */
  async *resultTallies(record: JobRecord): AsyncIterable<ResultTally & { seq: number }> {
    const end = record.settled_seq ?? Number.POSITIVE_INFINITY;
    for await (const entry of this.bucket.history(resultsFilter(record.id), {
      fromRevision: record.first_seq + 1,
    })) {
      if (entry.revision > end) return;
      if (entry.operation !== "PUT") continue;
      const read = readResultTally(entry.value);
      if (!read.ok) throw new CorruptEntry(`job ${record.id}, result at ${entry.revision}: ${read.error}`);
      yield { ...read.value, seq: entry.revision };
    }
  }

  /**
   * How many results the job has stored, counted by the bucket without reading them; undefined when the
   * bucket cannot count. Results are written once and never deleted, so this is the number of results.
   */
  async countResults(record: JobRecord): Promise<number | undefined> {
    return this.bucket.count?.(resultsFilter(record.id));
  }

  /** One page of results after the cursor, optionally only those matching the filters. */
  async page(
    record: JobRecord,
    options: { after?: number; limit: number; filters?: ReadonlySet<ResultFilter> },
  ): Promise<ResultPage> {
    const results: JobResult[] = [];
    for await (const result of this.results(record, options.after)) {
      if (!matchesFilters(result, options.filters)) continue;
      // One match past the page proves there is a next page.
      if (results.length === options.limit) return { results, next: results.at(-1)!.seq };
      results.push(result);
    }
    return { results, next: null };
  }

  /**
   * The job's results after revision `after` as they are stored, then `end` once the job has settled.
   * Stops early when `signal` aborts. The stream shows exactly what the settled job counts: a result is
   * held back until a later write of the job record, since only then is it sure to be inside the job's
   * final cut. Collectors write the record right after storing a reply (its count); a reply stored after
   * the job ended gets no such write, and the settled record's cut leaves it out.
   */
  async *events(
    record: JobRecord,
    options: { after?: number; signal: AbortSignal },
  ): AsyncIterable<JobEvent> {
    if (record.settled) {
      for await (const result of this.results(record, options.after)) {
        if (options.signal.aborted) return;
        yield { type: "result", result };
      }
      yield { type: "end", job: record };
      return;
    }
    const meta = metaKey(record.id);
    let held: JobResult[] = [];
    for await (const entry of this.bucket.watch(jobFilter(record.id), {
      fromRevision: Math.max(options.after ?? 0, record.first_seq) + 1,
      signal: options.signal,
    })) {
      if (entry.operation !== "PUT") continue;
      if (entry.key === meta) {
        const read = readJobRecord(entry.value);
        if (!read.ok) throw new CorruptEntry(`job ${record.id}: ${read.error}`);
        const cut = read.value.settled ? (read.value.settled_seq ?? entry.revision) : entry.revision;
        for (const result of held) if (result.seq <= cut) yield { type: "result", result };
        held = [];
        if (read.value.settled) {
          yield { type: "end", job: read.value };
          return;
        }
      } else if (isResultKey(record.id, entry.key)) {
        held.push(readStoredResult(record.id, entry.value, entry.revision));
      }
    }
  }

  /**
   * The job record once it has settled (final counts, no-reply marks made), or undefined when `signal`
   * aborts first. Watches the record alone, so a big job's results cost nothing here.
   */
  async settled(record: JobRecord, signal: AbortSignal): Promise<JobRecord | undefined> {
    if (record.settled) return record;
    const meta = metaKey(record.id);
    for await (const entry of this.bucket.watch(meta, { fromRevision: record.first_seq + 1, signal })) {
      if (entry.operation !== "PUT" || entry.key !== meta) continue;
      const read = readJobRecord(entry.value);
      if (!read.ok) throw new CorruptEntry(`job ${record.id}: ${read.error}`);
      if (read.value.settled) return read.value;
    }
    return undefined;
  }

  /**
   * One page of jobs, newest first. Job ids are random and a record's revision moves with every update,
   * so creation order is first_seq, which only the record holds: this reads every record the bucket keeps
   * (one value each, bounded by the retention), keeping only the best limit+1 in memory. A cursor is a
   * first_seq, so jobs created while a caller pages have higher ones and never shift its pages.
   */
  async list(query: JobListQuery): Promise<JobList> {
    const before = query.before ?? Number.POSITIVE_INFINITY;
    const kept: JobRecord[] = [];
    let unreadable = 0;
    for await (const entry of this.bucket.latest(META_FILTER)) {
      const read = readJobRecord(entry.value);
      if (!read.ok) {
        unreadable++;
        continue;
      }
      const record = read.value;
      if (record.first_seq >= before) continue;
      // A full page and one more: an older job cannot get in.
      const last = kept[query.limit];
      if (last !== undefined && record.first_seq < last.first_seq) continue;
      if (!(await query.include(record))) continue;
      kept.splice(insertionPoint(kept, record.first_seq), 0, record);
      if (kept.length > query.limit + 1) kept.pop();
    }
    const more = kept.length > query.limit;
    const jobs = kept.slice(0, query.limit);
    return { jobs, next: more ? (jobs.at(-1)?.first_seq ?? null) : null, unreadable };
  }

  /** Jobs a collector still has work on. */
  async *runIndex(): AsyncIterable<RunEntry> {
    for await (const entry of this.bucket.latest(RUN_FILTER)) {
      const { since } = JSON.parse(decoder.decode(entry.value)) as { since: number };
      yield { id: entry.key.slice("run.".length), since };
    }
  }

  /** Purged rather than deleted: a marker per finished job would make every sweep longer. */
  removeFromRunIndex(id: string): Promise<void> {
    return this.bucket.purge(runKey(id));
  }
}

/** Where a job goes in a list sorted by first_seq, highest first. */
function insertionPoint(sorted: readonly JobRecord[], firstSeq: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if ((sorted[mid]?.first_seq ?? 0) > firstSeq) low = mid + 1;
    else high = mid;
  }
  return low;
}

function readStoredResult(jobId: string, bytes: Uint8Array, seq: number): JobResult {
  const read = readResult(bytes);
  if (!read.ok) throw new CorruptEntry(`job ${jobId}, result at ${seq}: ${read.error}`);
  return withSeq(read.value, seq);
}
