import {
  type Consumer,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { type KvBucket, type KvEntry, type KvScanOptions, KvUnavailable } from "../kv/mod.ts";
import type { LogFn } from "./auth.ts";
import { OutageGate } from "./outage-gate.ts";

export interface KvBucketOptions {
  name: string;
  /** How long the server keeps each value (the bucket's max_age); every key of the bucket expires alike. */
  ttlMs: number;
  replicas?: number;
  /** Upper bound of the whole bucket in bytes; unlimited by default. */
  maxBytes?: number;
}

/** How JetStream replicates a stream (a bucket is one), as the server reports it. */
export interface Replication {
  /** Copies the stream is configured to keep. */
  replicas: number;
  /** The server that leads the stream in a cluster; undefined on a server without clustering. */
  leader: string | undefined;
  /** Copies that are up to date now: the leader and the peers the server calls current. */
  current: number;
}

/** Reads a stream's replication from its info. */
export async function streamReplication(jsm: JetStreamManager, stream: string): Promise<Replication> {
  const info = await jsm.streams.info(stream);
  const peers = info.cluster?.replicas ?? [];
  return {
    replicas: info.config.num_replicas,
    leader: info.cluster?.leader,
    current: (info.cluster?.leader ? 1 : 0) + peers.filter((peer) => peer.current && !peer.offline).length,
  };
}

/**
 * Logs the replication a bucket got, as a warning when it has fewer copies than were asked for (an existing
 * bucket keeps the settings it was made with). Never throws: a user without stream-info rights still works.
 */
export async function reportReplication(
  bucket: NatsKvBucket,
  requested: number,
  log: LogFn,
  fields: Record<string, unknown> = {},
): Promise<void> {
  try {
    const got = await bucket.replication();
    log(got.replicas < requested ? "warn" : "info", "kv bucket opened", {
      ...fields,
      bucket: bucket.name,
      replicas: got.replicas,
      replicas_requested: requested,
      replicas_current: got.current,
      ...(got.leader === undefined ? {} : { leader: got.leader }),
    });
  } catch (err) {
    log("warn", "kv bucket replication unknown", { ...fields, bucket: bucket.name, error: String(err) });
  }
}

/** A failed expected-last-sequence check (create on an existing key, a stale CAS); newer servers use the
 * second code when the key never existed. */
const WRONG_LAST_SEQUENCE: readonly number[] = [
  JetStreamApiCodes.StreamWrongLastSequence,
  JetStreamApiCodes.StreamWrongLastSequenceUnknown,
];
/** Stream exists with another configuration: the bucket is used as it is. */
const STREAM_NAME_IN_USE = 10058;

const OPERATION_HEADER = "KV-Operation";
// Messages the scans pull per batch: big enough to stream a 10,000-node job in a few round trips.
const SCAN_BATCH = 1000;
// A scan that has waited this long for its next message asks the server whether any is left.
const SCAN_IDLE_MS = 250;
/**
 * How long one pull of a consumer waits on the server, for every consumer here (scans and the reply
 * stream). A pull lost with its consumer's leader (moved in a rolling restart) is noticed after two
 * missed heartbeats, half of this apart: at the client's default of 30 s, replies sat unread that long,
 * and a collector's sweep (a scan of the run index) ended no job meanwhile.
 */
export const PULL_EXPIRES_MS = 5000;

/** A KvBucket on NATS JetStream KV. */
export class NatsKvBucket implements KvBucket {
  readonly #prefix: string;
  readonly #stream: string;
  readonly #publisher: Publisher;
  readonly #gate: OutageGate;

  private constructor(
    readonly name: string,
    private readonly kv: KV,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    connection: NatsConnection,
  ) {
    this.#prefix = `$KV.${name}.`;
    this.#stream = `KV_${name}`;
    this.#publisher = new Publisher(connection);
    this.#gate = new OutageGate(`kv bucket ${name}`);
  }

  /**
   * Opens the bucket, creating it when it does not exist. An existing bucket is used as it was configured
   * (so a changed ttl needs the stream to be edited, e.g. with `nats kv edit`).
   */
  static async open(connection: NatsConnection, options: KvBucketOptions): Promise<NatsKvBucket> {
    const js = jetstream(connection);
    const kvm = new Kvm(js);
    let kv: KV;
    try {
      kv = await kvm.create(options.name, {
        history: 1,
        ttl: options.ttlMs,
        replicas: options.replicas ?? 1,
        storage: StorageType.File,
        ...(options.maxBytes === undefined ? {} : { max_bytes: options.maxBytes }),
      });
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === STREAM_NAME_IN_USE)) throw err;
      kv = await kvm.open(options.name);
    }
    return new NatsKvBucket(options.name, kv, js, await js.jetstreamManager(), connection);
  }

  /** How the server replicates this bucket (start-up reports it, so an R1 bucket in an HA cluster shows). */
  replication(): Promise<Replication> {
    return streamReplication(this.jsm, this.#stream);
  }

  /**
   * Asks the stream's leader, not the nearest replica: a KV bucket allows direct gets, which any replica
   * of an R3 bucket answers, and a replica that has not yet applied a write answers as if it never
   * happened, so a job written a moment ago could read as missing. The leader has every write it acked.
   */
  get(key: string): Promise<KvEntry | undefined> {
    return this.#answer(async () => {
      if (!VALID_KEY.test(key)) return this.#clientGet(key);
      const stored = await this.jsm.streams.getMessage(this.#stream, { last_by_subj: this.#prefix + key });
      if (stored === null) return undefined;
      const operation = stored.header.get(OPERATION_HEADER);
      if (operation === "DEL" || operation === "PURGE") return undefined;
      return { key, value: stored.data, revision: stored.seq, operation: "PUT" };
    });
  }

  /** Keys outside the plain alphabet take the client's own path, which validates them as it always did. */
  async #clientGet(key: string): Promise<KvEntry | undefined> {
    const entry = await this.kv.get(key);
    if (entry === null || entry.operation !== "PUT") return undefined;
    return { key, value: entry.value, revision: entry.revision, operation: "PUT" };
  }

  create(key: string, value: Uint8Array | string): Promise<number | undefined> {
    return this.#answer(async () => {
      if (!VALID_KEY.test(key)) return unlessWrongSequence(this.kv.create(key, value));
      const written = await unlessWrongSequence(this.#publisher.publish(this.#prefix + key, value, 0));
      // The key exists, or holds a delete marker (which create may write over): the client's create tells
      // which, reading the key, so this costs a second round trip only for a key that was there.
      return written ?? unlessWrongSequence(this.kv.create(key, value));
    });
  }

  update(key: string, value: Uint8Array | string, revision: number): Promise<number | undefined> {
    return this.#answer(() =>
      !VALID_KEY.test(key) || revision <= 0
        ? unlessWrongSequence(this.kv.update(key, value, revision))
        : unlessWrongSequence(this.#publisher.publish(this.#prefix + key, value, revision)),
    );
  }

  put(key: string, value: Uint8Array | string): Promise<number> {
    return this.#answer(() =>
      VALID_KEY.test(key) ? this.#publisher.publish(this.#prefix + key, value) : this.kv.put(key, value),
    );
  }

  delete(key: string): Promise<void> {
    return this.#answer(() => this.kv.delete(key));
  }

  purge(key: string): Promise<void> {
    return this.#answer(async () => {
      await this.jsm.streams.purge(this.#stream, { filter: `${this.#prefix}${key}` });
    });
  }

  history(filter: string, options: KvScanOptions = {}): AsyncIterable<KvEntry> {
    return this.#read(filter, startAt(options.fromRevision), false);
  }

  async *latest(filter: string): AsyncIterable<KvEntry> {
    for await (const entry of this.#read(filter, { deliver_policy: DeliverPolicy.LastPerSubject }, false))
      if (entry.operation === "PUT") yield entry;
  }

  watch(filter: string, options: KvScanOptions & { signal: AbortSignal }): AsyncIterable<KvEntry> {
    return this.#read(filter, startAt(options.fromRevision), true, options.signal);
  }

  status(): Promise<{ entries: number; bytes: number }> {
    return this.#answer(async () => {
      const status = await this.kv.status();
      return { entries: status.values, bytes: status.size };
    });
  }

  /** The server's count of the filter's messages, from a consumer made for the question and dropped. */
  count(filter: string): Promise<number> {
    return this.#answer(async () => {
      const consumer = await this.js.consumers.get(this.#stream, {
        filter_subjects: `${this.#prefix}${filter}`,
        deliver_policy: DeliverPolicy.All,
      });
      try {
        return (await consumer.info(true)).num_pending;
      } finally {
        consumer.delete().catch(() => {});
      }
    });
  }

  /** The call's result; a failure that only says the bucket cannot answer now is a KvUnavailable. */
  #answer<T>(call: () => Promise<T>): Promise<T> {
    return this.#gate.run(call, (err) => unavailableOr(this.name, err));
  }

  /**
   * Reads through an ordered consumer (which the client re-creates at the right place after a reconnect).
   * Without `follow` it ends at the bucket's last revision when it started: it does not chase writes made
   * while it reads. The server's pending count can lag behind removals (a rewritten or purged key), so a
   * scan that waits in vain asks the server whether anything is left instead of waiting for ever.
   */
  async *#read(
    filter: string,
    deliver: { deliver_policy: DeliverPolicy; opt_start_seq?: number },
    follow: boolean,
    signal?: AbortSignal,
  ): AsyncIterable<KvEntry> {
    try {
      yield* this.#scan(filter, deliver, follow, signal);
    } catch (err) {
      throw unavailableOr(this.name, err);
    }
  }

  async *#scan(
    filter: string,
    deliver: { deliver_policy: DeliverPolicy; opt_start_seq?: number },
    follow: boolean,
    signal?: AbortSignal,
  ): AsyncIterable<KvEntry> {
    if (signal?.aborted) return;
    const end = follow
      ? Number.POSITIVE_INFINITY
      : (await this.jsm.streams.info(this.#stream)).state.last_seq;
    const consumer = await this.js.consumers.get(this.#stream, {
      filter_subjects: `${this.#prefix}${filter}`,
      ...deliver,
    });
    if (!follow && (await consumer.info(true)).num_pending === 0) {
      consumer.delete().catch(() => {});
      return;
    }
    const messages = await consumer.consume({ max_messages: SCAN_BATCH, expires: PULL_EXPIRES_MS });
    const stop = () => messages.stop();
    signal?.addEventListener("abort", stop, { once: true });
    const idle = follow ? undefined : new IdleCheck(consumer, messages, end);
    try {
      idle?.start();
      for await (const msg of messages) {
        idle?.progress();
        if (msg.seq > end) break;
        yield this.#entryOf(msg);
        if (!follow && (msg.seq === end || msg.info.pending === 0)) break;
      }
    } finally {
      idle?.stop();
      signal?.removeEventListener("abort", stop);
      messages.stop();
      // The server would drop the ephemeral consumer after a while anyway; a paging client makes many.
      consumer.delete().catch(() => {});
    }
  }

  #entryOf(msg: JsMsg): KvEntry {
    const operation = msg.headers?.get(OPERATION_HEADER);
    return {
      key: msg.subject.slice(this.#prefix.length),
      value: msg.data,
      revision: msg.seq,
      operation: operation === "DEL" || operation === "PURGE" ? operation : "PUT",
    };
  }
}

// nats.js errors that say the server could not answer now, not that the call was wrong.
const UNANSWERED = new Set([
  "TimeoutError",
  "NoResponders",
  "RequestError",
  "ClosedConnectionError",
  "DrainingConnectionError",
  "ConnectionError",
]);

/**
 * `err` as a KvUnavailable when it means the bucket cannot answer just now: no connection, no answer in
 * time, no responders, or the JetStream API's 503 (the stream or the cluster has no leader yet).
 */
function unavailableOr(bucket: string, err: unknown): unknown {
  if (!(err instanceof Error) || err instanceof KvUnavailable) return err;
  // The client exports the API's error class but not the one for a status message (its name says it).
  const code = (err as { code?: unknown }).code;
  const status =
    err instanceof JetStreamApiError
      ? err.status
      : err.name === "JetStreamStatusError" && typeof code === "number"
        ? code
        : 0;
  if (!UNANSWERED.has(err.name) && status !== 503 && status !== 408) return err;
  return new KvUnavailable(`kv bucket ${bucket} cannot answer just now: ${err.message}`, { cause: err });
}

// What the KV client accepts as a key; anything else goes through the client, which says what is wrong.
const VALID_KEY = /^[-/=\w]+(\.[-/=\w]+)*$/;
const EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence";
// The JetStream client's default for a publish's acknowledgement.
const PUBLISH_TIMEOUT_MS = 5000;

/**
 * JetStream publishes whose acknowledgements come back on one wildcard subscription of ours, matched by a
 * token in the reply subject. nats.js makes each `js.publish` a request of its own (a reply-map entry, a
 * timer, and an Error object built on every success), which in the collector cost more CPU than the rest
 * of storing a reply; here a publish is one message and one map entry, many may be under way at once, and
 * those issued together leave in one socket write. A write that gets no acknowledgement within the
 * timeout fails (it may still have been stored, as with any publish whose ack is lost).
 */
class Publisher {
  readonly #pending = new Map<
    number,
    { resolve(seq: number): void; reject(err: Error): void; until: number }
  >();
  #inbox: string | undefined;
  #subscription: Subscription | undefined;
  #next = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly connection: NatsConnection,
    private readonly timeoutMs = PUBLISH_TIMEOUT_MS,
  ) {}

  /** Stores `data` under `subject`; with `expectedLast`, only when the subject's last sequence is that one. */
  publish(subject: string, data: Uint8Array | string, expectedLast?: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const inbox = this.#listen();
      const token = ++this.#next;
      const options: { reply: string; headers?: ReturnType<typeof headers> } = { reply: `${inbox}.${token}` };
      if (expectedLast !== undefined) options.headers = expectation(expectedLast);
      this.#pending.set(token, { resolve, reject, until: Date.now() + this.timeoutMs });
      try {
        this.connection.publish(subject, data, options);
      } catch (err) {
        this.#pending.delete(token);
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.#watchTimeouts();
    });
  }

  #listen(): string {
    if (this.#inbox !== undefined && this.#subscription !== undefined && !this.#subscription.isClosed())
      return this.#inbox;
    // The connection's inbox prefix, which the server's permissions may require of reply subjects.
    const prefix = (this.connection as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    const inbox = createInbox(prefix);
    this.#inbox = inbox;
    this.#subscription = this.connection.subscribe(`${inbox}.*`, {
      callback: (err, msg) => (err ? this.#failAll(err) : this.#answer(inbox, msg)),
    });
    return inbox;
  }

  #answer(inbox: string, msg: Msg): void {
    const token = Number(msg.subject.slice(inbox.length + 1));
    const waiter = this.#pending.get(token);
    if (waiter === undefined) return;
    this.#pending.delete(token);
    if (msg.headers?.hasError) {
      // A status instead of an acknowledgement: 503 when no stream takes the subject, which is also what a
      // clustered stream without a leader answers.
      const text = `jetstream publish failed: ${msg.headers.code} ${msg.headers.description}`;
      waiter.reject(msg.headers.code === 503 ? new KvUnavailable(text) : new Error(text));
      return;
    }
    let ack: { seq?: number; error?: { code: number; err_code: number; description: string } };
    try {
      ack = JSON.parse(msg.string());
    } catch (err) {
      waiter.reject(new Error(`jetstream publish: unreadable acknowledgement (${String(err)})`));
      return;
    }
    if (ack.error !== undefined) waiter.reject(new JetStreamApiError(ack.error));
    else if (typeof ack.seq !== "number")
      waiter.reject(new Error("jetstream publish: acknowledgement without seq"));
    else waiter.resolve(ack.seq);
  }

  #failAll(err: Error): void {
    for (const waiter of this.#pending.values()) waiter.reject(err);
    this.#pending.clear();
    this.#subscription = undefined;
  }

  /** One timer for all the writes under way, checking every tenth of the timeout. */
  #watchTimeouts(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const now = Date.now();
      for (const [token, waiter] of this.#pending) {
        if (waiter.until > now) continue;
        this.#pending.delete(token);
        waiter.reject(new KvUnavailable("jetstream publish: no acknowledgement (timeout)"));
      }
      if (this.#pending.size > 0) this.#watchTimeouts();
    }, this.timeoutMs / 10);
    this.#timer.unref?.();
  }
}

// The header of a create (expected last sequence 0), made once: the client only reads a message's headers.
const CREATE_EXPECTATION = headers();
CREATE_EXPECTATION.set(EXPECTED_LAST_SUBJECT_SEQUENCE, "0");

/** The header that makes a write conditional on the subject's last sequence. */
function expectation(expectedLast: number): ReturnType<typeof headers> {
  if (expectedLast === 0) return CREATE_EXPECTATION;
  const made = headers();
  made.set(EXPECTED_LAST_SUBJECT_SEQUENCE, String(expectedLast));
  return made;
}

/**
 * Ends a bounded scan that waits for a message the server counted as pending but no longer has. One timer
 * for the whole scan, not one per message: a check that finds messages arrived since the last one waits
 * again, so the scan is judged idle after between one and two periods without a message.
 */
class IdleCheck {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #received = 0;
  #seen = 0;
  #stopped = false;

  constructor(
    private readonly consumer: Consumer,
    private readonly messages: ConsumerMessages,
    private readonly end: number,
  ) {}

  start(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#check(), SCAN_IDLE_MS);
  }

  progress(): void {
    this.#received++;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #check(): Promise<void> {
    if (this.#received !== this.#seen) {
      this.#seen = this.#received;
      return this.start();
    }
    const info = await this.consumer.info().catch(() => undefined);
    if (this.#stopped) return;
    // A message came while the server was asked: the scan is moving.
    if (this.#received !== this.#seen) return this.start();
    if (info === undefined || info.num_pending === 0 || info.delivered.stream_seq >= this.end)
      this.messages.stop();
    else this.start();
  }
}

function startAt(revision: number | undefined): { deliver_policy: DeliverPolicy; opt_start_seq?: number } {
  return revision === undefined || revision <= 1
    ? { deliver_policy: DeliverPolicy.All }
    : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: revision };
}

async function unlessWrongSequence(write: Promise<number>): Promise<number | undefined> {
  try {
    return await write;
  } catch (err) {
    if (err instanceof JetStreamApiError && WRONG_LAST_SEQUENCE.includes(err.code)) return undefined;
    throw err;
  }
}

/**
 * Whether a KV bucket exists, without creating it (`choria-edge doctor`): "missing" when the server has
 * JetStream but not the bucket; throws when JetStream is off or the user may not ask.
 */
export async function kvBucketState(connection: NatsConnection, name: string): Promise<"exists" | "missing"> {
  const jsm = await jetstreamManager(connection);
  try {
    await jsm.streams.info(`KV_${name}`);
    return "exists";
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return "missing";
    throw err;
  }
}
