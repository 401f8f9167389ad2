import {
  addResult,
  decideEnd,
  type EndReason,
  emptyCounts,
  expectedAnswers,
  finalState,
  isComplete,
  type JobCounts,
  type JobRecord,
  MAX_CONFLICTING_LISTED,
  noReplyResult,
  settle,
} from "./model.ts";
import type { JobStore } from "./store.ts";

/** What a full read of a job's results says. */
export interface Tally {
  counts: JobCounts;
  /** Every identity with a stored result. */
  identities: Set<string>;
  /** Revision of the last result read (the job's first_seq when there is none). */
  lastSeq: number;
  /** The first identities with a conflicting reply kept, as the record lists them. */
  conflicting: string[];
}

async function tally(store: JobStore, record: JobRecord): Promise<Tally> {
  // Apart, at once: conflicting replies are rare, and their scan should cost no wait of its own.
  const [read, conflicts] = await Promise.all([tallyResults(store, record), tallyConflicts(store, record)]);
  return { ...read, counts: { ...read.counts, conflicts: conflicts.count }, conflicting: conflicts.listed };
}

async function tallyResults(store: JobStore, record: JobRecord) {
  let counts = emptyCounts();
  const identities = new Set<string>();
  let lastSeq = record.first_seq;
  for await (const result of store.resultTallies(record)) {
    counts = addResult(counts, result);
    identities.add(result.identity);
    lastSeq = result.seq;
  }
  return { counts, identities, lastSeq };
}

async function tallyConflicts(store: JobStore, record: JobRecord) {
  let count = 0;
  const listed: string[] = [];
  for await (const identity of store.conflicts(record)) {
    count++;
    if (listed.length < MAX_CONFLICTING_LISTED) listed.push(identity);
  }
  return { count, listed };
}

export interface EndOptions {
  now?: () => number;
  /** Results written at once while marking the silent nodes. */
  concurrency?: number;
  /**
   * The results the caller itself stored for this job and counted in its record (a collector's own
   * writes). Taken instead of reading every result when it provably is all of them: the record's counts
   * are its counts (nobody else counted anything) and the bucket holds as many results and conflicting
   * replies as it has (nobody else stored anything, counted or not); as each of its results is one of the
   * stored ones, the two sets are then the same. Otherwise, or when the bucket cannot count, they are read.
   */
  known?: () => Tally | undefined;
}

/** `known` when it is every stored result of the job as `record` counts them, else undefined. */
async function wholeKnown(
  store: JobStore,
  record: JobRecord,
  known: EndOptions["known"],
): Promise<Tally | undefined> {
  const own = known?.();
  if (own === undefined || !sameCounts(own.counts, record.counts)) return undefined;
  const [results, conflicts] = await Promise.all([store.countResults(record), store.countConflicts(record)]);
  return results === own.identities.size && conflicts === own.counts.conflicts ? own : undefined;
}

/**
 * Ends a job, or finishes ending one that another process began (it is safe to call from every collector
 * and from the API at once, and again after a crash half-way). Returns the job as it then is, or
 * undefined when it does not exist.
 *
 * - `expected`: the running counts say every expected node answered. Counts kept per reply can drift (a
 *   collector that stopped between storing a reply and counting it), so they are checked against the
 *   stored results first: when they were wrong, they are set right and the job runs on.
 * - `deadline`: the deadline passed; `complete` if nobody is missing, else `timed_out`.
 * - `cancel`: the caller stopped waiting.
 *
 * The end is decided by compare-and-set (the first writer wins); then every target without a result gets
 * a no_reply mark, and the counts are recomputed from what is stored.
 */
export async function endJob(
  store: JobStore,
  id: string,
  reason: EndReason,
  options: EndOptions = {},
): Promise<JobRecord | undefined> {
  const now = options.now ?? Date.now;
  const found = await store.get(id);
  if (found === undefined) return undefined;
  let record = found.record;
  let known: Tally | undefined;
  for (let attempt = 1; record.state === "running"; attempt++) {
    const read = (await wholeKnown(store, record, options.known)) ?? (await tally(store, record));
    // A reply counted while the results were read may be missing from the read, and a record write after
    // a result promises that result is in the final cut (see JobStore.events): decide from a read that
    // is still current, reading again a few times before deciding without settling.
    const counted = record.counts;
    const stillCurrent = (r: JobRecord) => sameCounts(r.counts, counted);
    if (reason === "expected" && !isComplete(record, read.counts)) {
      const fixed = await store.update(id, (r) =>
        r.state === "running" && stillCurrent(r)
          ? { ...r, counts: read.counts, conflicting: read.conflicting }
          : undefined,
      );
      // Declined because replies were counted while the results were read: that read may have missed
      // results stored meanwhile, and no later reply may come to ask again, so read again from here.
      if (fixed === undefined || fixed.changed || attempt >= MAX_READS) return fixed?.record;
      record = fixed.record;
      continue;
    }
    const state = finalState(reason, record, read.counts);
    const lastRead = attempt >= MAX_READS;
    // Nobody left to mark: decide and settle in one write, from the one read.
    const nothingToMark = record.targets === 0 || expectedAnswers(read.counts) >= record.targets;
    let readIsCurrent = false;
    const decided = await store.update(id, (r) => {
      readIsCurrent = stillCurrent(r);
      if (r.state !== "running" || (!readIsCurrent && !lastRead)) return undefined;
      const ended = decideEnd(r, state, now());
      return nothingToMark && readIsCurrent ? settle(ended, read, read.lastSeq) : ended;
    });
    if (decided === undefined) return undefined;
    record = decided.record;
    if (decided.changed && readIsCurrent) known = read;
  }
  if (record.settled) return record;
  return settleJob(store, record, known, options.concurrency ?? 64);
}

async function settleJob(
  store: JobStore,
  record: JobRecord,
  known: Tally | undefined,
  concurrency: number,
): Promise<JobRecord | undefined> {
  let read = known ?? (await tally(store, record));
  if (record.targets > 0) {
    const seen = read.identities;
    const missing = (await store.targets(record)).filter((identity) => !seen.has(identity));
    await forEachLimited(missing, concurrency, (identity) =>
      store.putResult(record.id, noReplyResult(identity)),
    );
    // Read again: the counts and the cut must include the marks and any reply that raced them.
    if (missing.length > 0) read = await tally(store, record);
  }
  const final = read;
  const settled = await store.update(record.id, (r) =>
    r.settled ? undefined : settle(r, final, final.lastSeq),
  );
  return settled?.record;
}

const MAX_READS = 3;

function sameCounts(a: JobCounts, b: JobCounts): boolean {
  return (
    a.ok === b.ok &&
    a.failed === b.failed &&
    a.no_reply === b.no_reply &&
    a.unexpected === b.unexpected &&
    a.conflicts === b.conflicts
  );
}

async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<unknown>) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
