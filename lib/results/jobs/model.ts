import * as z from "zod/mini";
// For zod/mini's English messages (lib/protocol/zod-messages.ts).
import "../../protocol/mod.ts";
import type { NodeReply } from "../../client/mod.ts";
import type { DiscoveryOutcome } from "../mod.ts";

/*
 * The async job model, pure: what is stored for a job and for each node, how the counts are kept, and the
 * state transitions. A job is `running` until all expected nodes answered (`complete`), its deadline
 * passed (`timed_out`, or `complete` when nobody is missing), or its caller cancelled it (`cancelled`).
 * Ending a job is two steps: deciding the final state, then settling it (every target that never answered
 * gets a no_reply result, and the counts are recomputed from the stored results).
 */

export const JOB_STATES = ["running", "complete", "timed_out", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
export type FinalState = Exclude<JobState, "running">;

const RESULT_STATUSES = ["ok", "failed", "no_reply"] as const;
type ResultStatus = (typeof RESULT_STATUSES)[number];

/** What results can be filtered by: a status, or `unexpected` for repliers that were not targets. */
export const RESULT_FILTERS = [...RESULT_STATUSES, "unexpected"] as const;
export type ResultFilter = (typeof RESULT_FILTERS)[number];

/** Per-node data above this many bytes of JSON is stored cut, flagged `truncated`, by default. */
const DEFAULT_MAX_DATA_BYTES = 16 * 1024;

const urlCallbackSchema = z.object({
  kind: z.literal("url"),
  url: z.url({ protocol: /^https?$/ }),
  /** Standard Webhooks signing secret (`whsec_<base64>`); the collector's own secret when absent. */
  secret: z.optional(z.string().check(z.regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/))),
});
const lambdaCallbackSchema = z.object({
  kind: z.literal("lambda"),
  /** Name, ARN or partial ARN of the function. */
  function_name: z.string().check(z.minLength(1), z.maxLength(170)),
  qualifier: z.optional(z.string().check(z.minLength(1), z.maxLength(128))),
  region: z.optional(z.string().check(z.minLength(1), z.maxLength(32))),
});

/** A callback as a request, a key or a trigger names it. */
export const callbackTargetSchema = z.discriminatedUnion("kind", [urlCallbackSchema, lambdaCallbackSchema]);

/**
 * A callback as a job record keeps it: the gateway seals a URL callback's secret (sealed-secret.ts), so
 * the record holds `secret_sealed` and no `secret`; records from before sealing may still hold `secret`.
 */
const storedCallbackTargetSchema = z.discriminatedUnion("kind", [
  z.extend(urlCallbackSchema, {
    secret_sealed: z.optional(z.string().check(z.regex(/^v1\.[A-Za-z0-9+/]+=*\.[A-Za-z0-9+/]+=*$/))),
  }),
  lambdaCallbackSchema,
]);
export type CallbackTarget = z.infer<typeof storedCallbackTargetSchema>;

const isoTime = z.string().check(z.minLength(1));
const count = z.number().check(z.int(), z.gte(0));

/**
 * What became of a callback attempt, as a class of our own: never the receiver's text (nor an error
 * message quoting it), since whoever named the callback reads the job. `http_error` and `lambda_error`
 * come with the status; the collector's log has the details.
 */
export const CALLBACK_OUTCOMES = [
  "delivered",
  "http_error",
  "lambda_error",
  "timeout",
  "connection_failed",
  "refused_address",
  "invalid_target",
] as const;
export type CallbackOutcomeClass = (typeof CALLBACK_OUTCOMES)[number];

const callbackAttemptSchema = z.object({
  attempt: z.number().check(z.int(), z.gte(1)),
  at: isoTime,
  duration_ms: z.number().check(z.gte(0)),
  ok: z.boolean(),
  /** Absent on attempts recorded before outcomes were classes. */
  outcome: z.optional(z.enum(CALLBACK_OUTCOMES)),
  /** HTTP status of the receiver, or of the Lambda Invoke API. */
  status: z.optional(z.number().check(z.int())),
  /** Only on attempts recorded before outcomes were classes; never shown. */
  error: z.optional(z.string()),
});
export type CallbackAttempt = z.infer<typeof callbackAttemptSchema>;

/** An attempt as the job API shows it. */
interface CallbackAttemptView {
  attempt: number;
  at: string;
  duration_ms: number;
  ok: boolean;
  outcome: CallbackOutcomeClass;
  status?: number;
}

function attemptView(attempt: CallbackAttempt): CallbackAttemptView {
  const outcome =
    attempt.outcome ??
    (attempt.ok ? "delivered" : attempt.status !== undefined ? "http_error" : "connection_failed");
  return {
    attempt: attempt.attempt,
    at: attempt.at,
    duration_ms: attempt.duration_ms,
    ok: attempt.ok,
    outcome,
    ...(attempt.status === undefined ? {} : { status: attempt.status }),
  };
}

const CALLBACK_STATUSES = ["waiting", "pending", "delivered", "failed"] as const;

const callbackStateSchema = z.object({
  target: storedCallbackTargetSchema,
  /** `waiting` for the job to end, `pending` delivery, then `delivered` or `failed` (gave up). */
  status: z.enum(CALLBACK_STATUSES),
  attempts: z.array(callbackAttemptSchema),
  next_attempt_at: z.nullable(isoTime),
  /** A collector is making an attempt until then; others keep off. */
  lease_until: z.nullable(isoTime),
  delivered_at: z.nullable(isoTime),
});
type CallbackState = z.infer<typeof callbackStateSchema>;

/** A data-store write made when a job ends; `when_state` limits it to some end states. */
const dataActionSchema = z.discriminatedUnion("op", [
  z.object({
    op: z.literal("put"),
    key: z.string().check(z.minLength(1)),
    value: z.string(),
    when_state: z.optional(z.array(z.enum(JOB_STATES))),
  }),
  z.object({
    op: z.literal("delete"),
    key: z.string().check(z.minLength(1)),
    when_state: z.optional(z.array(z.enum(JOB_STATES))),
  }),
]);
export type JobDataAction = z.infer<typeof dataActionSchema>;

/**
 * What has to happen in the data store when a job ends (a trigger's locks released, its `on_complete`
 * writes made): recorded at creation, done once by whichever collector settles the job. Lock tokens are
 * here and nowhere else; the job API never shows them.
 */
const jobEffectsSchema = z.object({
  locks: z.array(z.object({ name: z.string(), token: z.string() })),
  data: z.array(dataActionSchema),
  done: z.boolean(),
});
export type JobEffects = z.infer<typeof jobEffectsSchema>;

const discoverySchema: z.ZodMiniType<DiscoveryOutcome> = z.object({
  complete: z.boolean(),
  found: count,
  reason: z.enum(["timeout", "stall", "cancelled"]),
});

const countsSchema = z.object({
  ok: count,
  failed: count,
  no_reply: count,
  unexpected: count,
  /** Absent from records written before conflicts were kept. */
  conflicts: z._default(count, 0),
});
/**
 * `ok` and `failed` count replies by statuscode, unexpected repliers included (as the sync summary does);
 * `unexpected` counts repliers that were not targets; `no_reply` is known only once the job is settled;
 * `conflicts` counts identities that sent a second reply different from the one stored (see
 * `conflicting`).
 */
export type JobCounts = z.infer<typeof countsSchema>;

const jobRecordSchema = z.object({
  id: z.string(),
  request_id: z.string(),
  /** Key id of the caller that created the job. */
  caller: z.string(),
  /** The federation cluster the request went into; null on records written before it was kept. */
  cluster: z._default(z.nullable(z.string()), null),
  collective: z.string(),
  agent: z.string(),
  action: z.string(),
  created_at: isoTime,
  deadline_at: isoTime,
  /** Replies that complete the job; null when nobody knows (a broadcast without `expect`). */
  expected: z.nullable(count),
  /** How many target identities are stored (0 when only a count is known). */
  targets: count,
  /** Every entry of this job in the bucket has a higher revision: where scans start. */
  first_seq: count,
  state: z.enum(JOB_STATES),
  counts: countsSchema,
  /**
   * The first MAX_CONFLICTING_LISTED identities that sent two different replies: Choria v1 replies are
   * hashed, not signed, so a client on the collective can answer in a node's name. The first reply is the
   * result; the other is kept beside it (keys.ts) and makes the identity listed here.
   */
  conflicting: z._default(z.array(z.string()), []),
  finished_at: z.nullable(isoTime),
  /** No-reply marks made and counts recomputed; only then are the counts final. */
  settled: z.boolean(),
  /** The last result revision counted when the job settled; results stored after it are not the job's. */
  settled_seq: z.nullable(count),
  max_data_bytes: z.number().check(z.int(), z.gte(1)),
  callback: z.nullable(callbackStateSchema),
  /** What started the request (webhook source, delivery id, ...), as the gateway describes it. */
  trigger: z.nullable(z.record(z.string(), z.string())),
  effects: z._default(z.nullable(jobEffectsSchema), null),
  /** How the request's discovery ended; null when it had none (named nodes, broadcast, older records). */
  discovery: z._default(z.nullable(discoverySchema), null),
});
export type JobRecord = z.infer<typeof jobRecordSchema>;

/** Identities a job record lists as conflicting, at most; `counts.conflicts` has the whole number. */
export const MAX_CONFLICTING_LISTED = 20;

const storedResultSchema = z.object({
  identity: z.string(),
  status: z.enum(RESULT_STATUSES),
  statuscode: z.nullable(z.number().check(z.int())),
  statusmsg: z.nullable(z.string()),
  /** The reply's data; when `truncated`, the first max_data_bytes of its JSON text, as a string. */
  data: z.unknown(),
  truncated: z.optional(z.literal(true)),
  /** Bytes of the data's JSON before it was cut. */
  original_size: z.optional(count),
  unexpected: z.optional(z.literal(true)),
  /** When NATS took the reply in; null for no_reply. */
  received_at: z.nullable(isoTime),
  /**
   * The SHA-256 of the reply's message (base64), as the reply carries it: a second reply from the same
   * identity with the same hash is the same reply again. Absent for no_reply and on older results.
   */
  hash: z.optional(z.string()),
});
export type StoredResult = z.infer<typeof storedResultSchema>;

/** A result as read back: with its revision, which orders results and is their cursor and SSE event id. */
export type JobResult = StoredResult & { seq: number };

/** The outcome of reading a stored document: never throws, says what is wrong. */
export type Read<T> = { ok: true; value: T } | { ok: false; error: string };

const decoder = new TextDecoder();

function readJson<T>(schema: z.ZodMiniType<T>, bytes: Uint8Array): Read<T> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, error: `${issue.path.join(".") || "document"}: ${issue.message}` };
}

export function readJobRecord(bytes: Uint8Array): Read<JobRecord> {
  return readJson(jobRecordSchema, bytes);
}

export function readResult(bytes: Uint8Array): Read<StoredResult> {
  return readJson(storedResultSchema, bytes);
}

/** What counting a stored result needs of it. */
export interface ResultTally {
  identity: string;
  status: ResultStatus;
  unexpected?: true;
}

/**
 * The fields of a stored result that its job's counts are made of, checked by hand: ending a 10,000-node
 * job reads every result, and a full schema check of each cost more than the read. A document these
 * fields do not fit is refused as readResult would refuse it.
 */
export function readResultTally(bytes: Uint8Array): Read<ResultTally> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  if (typeof value !== "object" || value === null) return { ok: false, error: "document: not an object" };
  const { identity, status, unexpected } = value as Record<string, unknown>;
  if (typeof identity !== "string") return { ok: false, error: "identity: not a string" };
  if (!(RESULT_STATUSES as readonly unknown[]).includes(status))
    return { ok: false, error: "status: not a result status" };
  if (unexpected !== undefined && unexpected !== true) return { ok: false, error: "unexpected: not true" };
  return {
    ok: true,
    value: unexpected
      ? { identity, status: status as ResultStatus, unexpected }
      : { identity, status: status as ResultStatus },
  };
}

export interface NewJob {
  request_id: string;
  caller: string;
  cluster?: string;
  collective: string;
  agent: string;
  action: string;
  /** Identities the request went to: those that stay silent are reported as no_reply. */
  targets?: readonly string[];
  /** Replies that complete the job; the number of targets by default. */
  expect?: number;
  /** Milliseconds from creation to the deadline. */
  timeout_ms: number;
  callback?: CallbackTarget;
  trigger?: Record<string, string>;
  /** Locks to release and data to write when the job ends. */
  effects?: Omit<JobEffects, "done">;
  max_data_bytes?: number;
  discovery?: DiscoveryOutcome;
}

export function newJobRecord(id: string, job: NewJob, now: number, firstSeq: number): JobRecord {
  return {
    id,
    request_id: job.request_id,
    caller: job.caller,
    cluster: job.cluster ?? null,
    collective: job.collective,
    agent: job.agent,
    action: job.action,
    created_at: iso(now),
    deadline_at: iso(now + job.timeout_ms),
    expected: job.expect ?? job.targets?.length ?? null,
    targets: job.targets?.length ?? 0,
    first_seq: firstSeq,
    state: "running",
    counts: emptyCounts(),
    conflicting: [],
    finished_at: null,
    settled: false,
    settled_seq: null,
    max_data_bytes: job.max_data_bytes ?? DEFAULT_MAX_DATA_BYTES,
    callback: job.callback
      ? {
          target: job.callback,
          status: "waiting",
          attempts: [],
          next_attempt_at: null,
          lease_until: null,
          delivered_at: null,
        }
      : null,
    trigger: job.trigger ?? null,
    effects: job.effects ? { ...job.effects, done: false } : null,
    discovery: job.discovery ?? null,
  };
}

const encoder = new TextEncoder();

/** The data as stored: as it came when its JSON fits `maxBytes`, else the JSON's first bytes, flagged. */
export function limitData(
  data: unknown,
  maxBytes: number,
): { data: unknown; truncated?: true; original_size?: number } {
  const json = JSON.stringify(data ?? null);
  // A UTF-8 character takes at most 3 bytes per UTF-16 unit, so short text needs no encoding to be sure.
  if (json.length * 3 <= maxBytes) return { data };
  const bytes = encoder.encode(json);
  if (bytes.byteLength <= maxBytes) return { data };
  let end = maxBytes;
  // Never end inside a character: back up over UTF-8 continuation bytes (10xxxxxx).
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return { data: decoder.decode(bytes.subarray(0, end)), truncated: true, original_size: bytes.byteLength };
}

/** A node's reply as stored under its job. Discovery replies (`pong`) count as ok with the text as data. */
export function resultOfReply(
  reply: Pick<NodeReply, "sender" | "rpc" | "payload" | "hash">,
  options: { maxDataBytes: number; receivedAt: number; unexpected: boolean },
): StoredResult {
  const statuscode = reply.rpc?.statuscode ?? 0;
  const result: StoredResult = {
    identity: reply.sender,
    status: statuscode === 0 ? "ok" : "failed",
    statuscode,
    statusmsg: reply.rpc?.statusmsg ?? "OK",
    ...limitData(reply.rpc ? reply.rpc.data : reply.payload, options.maxDataBytes),
    received_at: iso(options.receivedAt),
    hash: reply.hash,
  };
  if (options.unexpected) result.unexpected = true;
  return result;
}

export function noReplyResult(identity: string): StoredResult {
  return { identity, status: "no_reply", statuscode: null, statusmsg: null, data: null, received_at: null };
}

export function emptyCounts(): JobCounts {
  return { ok: 0, failed: 0, no_reply: 0, unexpected: 0, conflicts: 0 };
}

export function addResult(counts: JobCounts, result: ResultTally): JobCounts {
  return {
    ok: counts.ok + (result.status === "ok" ? 1 : 0),
    failed: counts.failed + (result.status === "failed" ? 1 : 0),
    no_reply: counts.no_reply + (result.status === "no_reply" ? 1 : 0),
    unexpected: counts.unexpected + (result.unexpected ? 1 : 0),
    conflicts: counts.conflicts,
  };
}

export function addCounts(a: JobCounts, b: JobCounts): JobCounts {
  return {
    ok: a.ok + b.ok,
    failed: a.failed + b.failed,
    no_reply: a.no_reply + b.no_reply,
    unexpected: a.unexpected + b.unexpected,
    conflicts: a.conflicts + b.conflicts,
  };
}

/**
 * The record with `delta` added to its counts (conflicts included), and the identities of the conflicting
 * replies among it listed while the list has room.
 */
export function addToCounts(record: JobRecord, delta: JobCounts, conflicting: readonly string[]): JobRecord {
  const listed = [...record.conflicting];
  for (const identity of conflicting)
    if (listed.length < MAX_CONFLICTING_LISTED && !listed.includes(identity)) listed.push(identity);
  return { ...record, counts: addCounts(record.counts, delta), conflicting: listed };
}

/** Replies from nodes that were expected to answer. */
export function expectedAnswers(counts: JobCounts): number {
  return counts.ok + counts.failed - counts.unexpected;
}

export function isComplete(record: JobRecord, counts: JobCounts = record.counts): boolean {
  return record.expected !== null && expectedAnswers(counts) >= record.expected;
}

/** Expected nodes not heard from; null when nobody knows how many to expect. */
function outstanding(record: JobRecord): number | null {
  if (record.expected === null) return null;
  if (record.settled) return 0;
  return Math.max(0, record.expected - expectedAnswers(record.counts));
}

export type EndReason = "expected" | "deadline" | "cancel";

/**
 * The state a job ends in: `cancelled` when its caller stopped it; otherwise `complete` if every expected
 * node answered (or nobody knows who should have: there is nothing to miss), else `timed_out`.
 */
export function finalState(reason: EndReason, record: JobRecord, counts: JobCounts): FinalState {
  if (reason === "cancel") return "cancelled";
  return record.expected === null || isComplete(record, counts) ? "complete" : "timed_out";
}

/** running → a final state; the callback, if any, becomes due. Unsettled until `settle`. */
export function decideEnd(record: JobRecord, state: FinalState, now: number): JobRecord {
  return {
    ...record,
    state,
    finished_at: iso(now),
    callback: record.callback ? { ...record.callback, status: "pending", next_attempt_at: iso(now) } : null,
  };
}

/**
 * Final counts from every stored result: for a job that only knew a count of expected replies, those that
 * never came are counted here, as there is nobody to mark.
 */
export function settle(
  record: JobRecord,
  tallied: { counts: JobCounts; conflicting: readonly string[] },
  settledSeq: number,
): JobRecord {
  const counts =
    record.targets === 0 && record.expected !== null
      ? { ...tallied.counts, no_reply: Math.max(0, record.expected - expectedAnswers(tallied.counts)) }
      : tallied.counts;
  return { ...record, counts, conflicting: [...tallied.conflicting], settled: true, settled_seq: settledSeq };
}

export function matchesFilters(
  result: StoredResult,
  filters: ReadonlySet<ResultFilter> | undefined,
): boolean {
  if (filters === undefined || filters.size === 0) return true;
  return filters.has(result.status) || (result.unexpected === true && filters.has("unexpected"));
}

/** A job as the API shows it: no secrets, `outstanding` worked out. */
export interface JobView {
  id: string;
  request_id: string;
  caller: string;
  cluster: string | null;
  collective: string;
  agent: string;
  action: string;
  state: JobState;
  created_at: string;
  deadline_at: string;
  finished_at: string | null;
  expected: number | null;
  counts: JobCounts & { outstanding: number | null };
  /** Identities that sent two different replies (the first is the result), at most MAX_CONFLICTING_LISTED. */
  conflicting: string[];
  callback: {
    kind: CallbackTarget["kind"];
    target: string;
    status: CallbackState["status"];
    attempts: CallbackAttemptView[];
    next_attempt_at: string | null;
    delivered_at: string | null;
  } | null;
  trigger: Record<string, string> | null;
  /** The locks the job holds until it ends, and whether its end's data writes are done. */
  effects: { locks: string[]; data_actions: number; done: boolean } | null;
  discovery: DiscoveryOutcome | null;
}

export function jobView(record: JobRecord): JobView {
  const callback = record.callback;
  return {
    id: record.id,
    request_id: record.request_id,
    caller: record.caller,
    cluster: record.cluster,
    collective: record.collective,
    agent: record.agent,
    action: record.action,
    state: record.state,
    created_at: record.created_at,
    deadline_at: record.deadline_at,
    finished_at: record.finished_at,
    expected: record.expected,
    counts: { ...record.counts, outstanding: outstanding(record) },
    conflicting: record.conflicting,
    callback: callback
      ? {
          kind: callback.target.kind,
          target: callback.target.kind === "url" ? callback.target.url : callback.target.function_name,
          status: callback.status,
          attempts: callback.attempts.map(attemptView),
          next_attempt_at: callback.next_attempt_at,
          delivered_at: callback.delivered_at,
        }
      : null,
    trigger: record.trigger,
    effects: record.effects
      ? {
          locks: record.effects.locks.map((lock) => lock.name),
          data_actions: record.effects.data.length,
          done: record.effects.done,
        }
      : null,
    discovery: record.discovery,
  };
}

export function withSeq(result: StoredResult, seq: number): JobResult {
  return { ...result, seq };
}

// Replies that arrive together share their millisecond: the collector stamps thousands a second.
let lastIso = { ms: Number.NaN, text: "" };

export function iso(ms: number): string {
  if (ms !== lastIso.ms) lastIso = { ms, text: new Date(ms).toISOString() };
  return lastIso.text;
}
