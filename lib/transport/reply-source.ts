import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/nats-core";
import type { LogFn } from "./auth.ts";
import type { MessageBus } from "./bus.ts";
import { PULL_EXPIRES_MS, streamReplication } from "./kv-bucket.ts";

/** A reply as the async result collector receives it. */
export interface CapturedReply {
  subject: string;
  data: Uint8Array;
  /** Milliseconds since the epoch when NATS took the reply in (stream capture) or the subscriber got it. */
  receivedAt: number;
  /** Handed out before and never confirmed: an earlier attempt may already have stored it. */
  redelivered: boolean;
}

/** `done`: dealt with for good (stored, or refused); `retry`: hand it out again later (the store was down). */
export type ReplyDisposition = "done" | "retry";

export type ReplyHandler = (reply: CapturedReply) => Promise<ReplyDisposition>;

/** Where the collector's replies come from. Several collectors share one source by queue or consumer. */
export interface ReplySource {
  /**
   * `stream`: a JetStream stream captures the reply subjects, so replies published while no collector runs
   * wait for one; `queue`: a core NATS queue subscription, so such replies are lost (at most once).
   */
  readonly kind: "stream" | "queue";
  start(handler: ReplyHandler): Promise<void>;
  /** A time (ms since the epoch) such that every reply that arrived before it has been handled. */
  settledThrough(): Promise<number>;
  /** Stops taking replies and waits for those being handled. */
  stop(): Promise<void>;
}

export interface QueueReplySourceOptions {
  subject: string;
  queue: string;
  /** Delays between the attempts made for a reply whose handler asks for a retry. */
  retryDelaysMs?: readonly number[];
  log?: LogFn;
  now?: () => number;
}

/** Replies from a core NATS queue subscription: cheap, but what arrives while no collector runs is lost. */
export function queueReplySource(bus: MessageBus, options: QueueReplySourceOptions): ReplySource {
  const now = options.now ?? Date.now;
  const delays = options.retryDelaysMs ?? [100, 1000, 5000];
  const log = options.log ?? (() => {});
  const inFlight = new Map<Promise<void>, number>();
  let subscription: ReturnType<MessageBus["subscribe"]> | undefined;

  async function handleWithRetries(handler: ReplyHandler, reply: CapturedReply): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const disposition = await handler({ ...reply, redelivered: attempt > 0 }).catch(() => "retry" as const);
      if (disposition === "done") return;
      const delay = delays[attempt];
      if (delay === undefined) {
        log("error", "reply dropped after retries", { subject: reply.subject, attempts: attempt + 1 });
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  return {
    kind: "queue",
    async start(handler) {
      subscription = bus.queueSubscribe(options.subject, options.queue, (msg) => {
        const receivedAt = now();
        const work = handleWithRetries(handler, {
          subject: msg.subject,
          data: msg.data,
          receivedAt,
          redelivered: false,
        });
        inFlight.set(work, receivedAt);
        void work.finally(() => inFlight.delete(work));
      });
      await bus.flush();
    },
    async settledThrough() {
      let oldest = now();
      for (const receivedAt of inFlight.values()) oldest = Math.min(oldest, receivedAt);
      return oldest;
    },
    async stop() {
      await subscription?.drain();
      while (inFlight.size > 0) await Promise.all(inFlight.keys());
    },
  };
}

export interface StreamReplySourceOptions {
  /** The stream capturing the reply subjects. */
  stream: string;
  subjects: string[];
  /** The durable consumer every collector instance pulls from (they share its messages). */
  consumer: string;
  /** How long a captured reply waits for a collector before the stream drops it. */
  maxAgeMs: number;
  replicas?: number;
  /**
   * How long a reply handed to a collector that stops answering for it (killed, frozen, cut off) waits
   * before it goes to another: what a crashed collector costs its jobs. A live collector says it is still
   * working on the replies it has held a while, every third of this, so a slow store does not get them
   * handed out twice.
   */
  ackWaitMs?: number;
  /** Replies handed out and not yet confirmed, over all instances. */
  maxAckPending?: number;
  /** Delay before a reply the handler could not store is handed out again. */
  retryDelayMs?: number;
  log?: LogFn;
  now?: () => number;
}

// Pull batch per request; the consumer's max_ack_pending bounds how many are held at once.
const PULL_BATCH = 256;
/** Short, as nothing but a dead collector waits on it (the default of 30 s stalled jobs that long). */
const DEFAULT_ACK_WAIT_MS = 2000;
const CONSUMER_ALREADY_EXISTS = 10148;

/**
 * Replies captured by a JetStream work-queue stream and shared through one durable consumer. A reply is
 * confirmed only once the handler has stored it, so a collector that stops or crashes loses nothing: what
 * it held goes to another instance (or to itself after a restart) when the ack wait runs out, which is
 * short because the replies being handled are kept from running out by in-progress acks.
 */
export async function streamReplySource(
  connection: NatsConnection,
  options: StreamReplySourceOptions,
): Promise<ReplySource> {
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const retryDelay = options.retryDelayMs ?? 1000;
  const ackWaitMs = options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS;
  const jsm = await jetstreamManager(connection);
  await ensureStream(jsm, options);
  await ensureConsumer(jsm, options, ackWaitMs);
  // An existing stream keeps its replicas whatever we asked for: say what it has.
  const replication = await streamReplication(jsm, options.stream);
  log(replication.replicas < (options.replicas ?? 1) ? "warn" : "info", "reply stream ready", {
    stream: options.stream,
    replicas: replication.replicas,
    replicas_requested: options.replicas ?? 1,
    replicas_current: replication.current,
    ...(replication.leader === undefined ? {} : { leader: replication.leader }),
  });
  const js = jetstream(connection);

  // Replies being handled: the message each one is, and when it was handed to the handler.
  const inFlight = new Map<Promise<void>, { msg: JsMsg; since: number }>();
  let messages: ConsumerMessages | undefined;
  let keepAlive: ReturnType<typeof setInterval> | undefined;
  // Times at which the stream's last sequence was noted, for settledThrough().
  const marks: { at: number; lastSeq: number }[] = [];
  let settledAt = 0;

  function dispatch(handler: ReplyHandler, msg: JsMsg) {
    const work = handler({
      subject: msg.subject,
      data: msg.data,
      receivedAt: msg.time.getTime(),
      redelivered: msg.redelivered,
    })
      .catch((err: unknown) => {
        log("error", "reply handler failed", { subject: msg.subject, error: String(err) });
        return "retry" as const;
      })
      .then((disposition) => (disposition === "done" ? msg.ack() : msg.nak(retryDelay)));
    inFlight.set(work, { msg, since: Date.now() });
    void work.finally(() => inFlight.delete(work));
  }

  return {
    kind: "stream",
    async start(handler) {
      const consumer = await js.consumers.get(options.stream, options.consumer);
      // A callback rather than the async iterator: no promise and no turn of the iterator per reply.
      messages = await consumer.consume({
        max_messages: PULL_BATCH,
        expires: PULL_EXPIRES_MS,
        callback: (msg) => dispatch(handler, msg),
      });
      // Ended by a failure, not by stop(): a collector that takes no more replies must not look alive, so
      // the failure ends the process as an ended iterator's did.
      void messages.closed().then((err) => {
        if (err === undefined) return;
        log("error", "reply consumer failed", { stream: options.stream, error: String(err) });
        throw err;
      });
      // Only replies held a while are said to be in progress: most are acked long before their ack wait
      // nears, and a `working` for each of those was one more message per reply both ways. One held
      // longer still gets its first `working` with half its ack wait to spare.
      const heldLong = ackWaitMs / 6;
      keepAlive = setInterval(() => {
        const now = Date.now();
        for (const { msg, since } of inFlight.values()) if (now - since >= heldLong) msg.working();
      }, ackWaitMs / 3);
      keepAlive.unref?.();
    },
    async settledThrough() {
      const at = now();
      const [consumer, stream] = await Promise.all([
        jsm.consumers.info(options.stream, options.consumer),
        jsm.streams.info(options.stream),
      ]);
      if (consumer.num_pending === 0 && consumer.num_ack_pending === 0) {
        marks.length = 0;
        settledAt = at;
        return at;
      }
      marks.push({ at, lastSeq: stream.state.last_seq });
      // Everything up to the ack floor is handled, so a mark at or below it has settled.
      while (marks.length > 0 && marks[0]!.lastSeq <= consumer.ack_floor.stream_seq)
        settledAt = marks.shift()!.at;
      return settledAt;
    },
    async stop() {
      messages?.stop();
      await messages?.closed();
      while (inFlight.size > 0) await Promise.all(inFlight.keys());
      clearInterval(keepAlive);
    },
  };
}

async function ensureStream(jsm: JetStreamManager, options: StreamReplySourceOptions): Promise<void> {
  const config = {
    name: options.stream,
    subjects: options.subjects,
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(options.maxAgeMs),
    num_replicas: options.replicas ?? 1,
    // Replies are plain publishes that ask for no ack; and nats-server 2.10+ refuses a stream whose
    // subjects begin with a wildcard (`*.reply.…`, which could match `$JS.…`) unless it sends none.
    no_ack: true,
  };
  try {
    await jsm.streams.add(config);
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    // It exists with other settings: bring the ones that may change up to date.
    await jsm.streams.update(options.stream, { subjects: config.subjects, max_age: config.max_age });
  }
}

async function ensureConsumer(
  jsm: JetStreamManager,
  options: StreamReplySourceOptions,
  ackWaitMs: number,
): Promise<void> {
  const settings = {
    ack_wait: nanos(ackWaitMs),
    max_ack_pending: options.maxAckPending ?? 2000,
  };
  try {
    await jsm.consumers.add(options.stream, {
      durable_name: options.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ...settings,
    });
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === CONSUMER_ALREADY_EXISTS)) throw err;
    await jsm.consumers.update(options.stream, options.consumer, settings);
  }
}
