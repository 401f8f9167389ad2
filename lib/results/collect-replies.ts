import { type NodeReply, openReply, openReplySync, type ReplyDigest } from "../client/mod.ts";
import { type Clock, realClock } from "../clock/mod.ts";
import type { Decoded } from "../protocol/mod.ts";
import type { MessageBus } from "../transport/mod.ts";
import type { ReplyFeed } from "./reply-router.ts";

/**
 * Which rule ended a collection; reported in summaries so that callers know what "done" meant.
 * `cancelled` means the caller gave up (for example an HTTP client went away), never a protocol outcome.
 */
export type DoneReason = "expected" | "timeout" | "idle" | "cancelled";

export interface CollectOptions {
  /** Stop once replies from this many distinct nodes are in. */
  expected?: number;
  /** Identities that are expected to answer; a reply from anyone else is counted as unexpected. */
  expectedIdentities?: Iterable<string>;
  /** Hard limit on the whole collection. */
  timeoutMs: number;
  /** Stop when no message has arrived for this long after the first one (discovery-style): StallWatch. */
  idleMs?: number;
  /** Called for each accepted reply as it arrives, for streaming. */
  onReply?: (reply: NodeReply) => void;
  /** Ends the collection early, as `cancelled`. */
  signal?: AbortSignal;
  /** The stall rule's time; the real clock by default. */
  clock?: Clock;
  /** Where the replies come from: the bus itself (a subscription of its own) by default. */
  feed?: ReplyFeed;
  /** Checks reply hashes at once (Node's createHash) instead of through openReply's promise. */
  digest?: ReplyDigest;
}

export interface Collection {
  replies: NodeReply[];
  /** The same reply again from a node that already answered; not in `replies`. */
  duplicates: number;
  /**
   * Nodes that answered again with a different reply (another message hash): a node answering twice, or
   * someone answering in its name. The first reply stays in `replies`; which is genuine nobody can tell.
   */
  conflicting: string[];
  /** Messages on the reply subject that were not a well-formed, correctly hashed reply to this request. */
  invalid: number;
  /** Senders outside `expectedIdentities`, when that was given. */
  unexpected: string[];
  done: DoneReason;
  elapsedMs: number;
  /** Milliseconds from the last message on the subject to the end; null when none came. */
  quietMs: number | null;
}

/**
 * The bookkeeping of a collection, separate from the subscription so that it is testable without a
 * socket: one reply per sender, counts of everything else, and the done rule.
 */
export class ReplyTally {
  readonly replies: NodeReply[] = [];
  readonly unexpected: string[] = [];
  duplicates = 0;
  invalid = 0;
  // Each sender's first reply hash; a sender listed once in `conflicting` however often it differs.
  readonly #seen = new Map<string, string>();
  readonly #conflicting = new Set<string>();
  readonly #expectedIdentities: ReadonlySet<string> | undefined;

  constructor(
    readonly requestId: string,
    private readonly options: Pick<CollectOptions, "expected" | "expectedIdentities">,
  ) {
    this.#expectedIdentities = options.expectedIdentities ? new Set(options.expectedIdentities) : undefined;
  }

  /** Records one reply; true when it is a new, valid answer to this request. */
  accept(reply: NodeReply): boolean {
    if (reply.requestId !== this.requestId) {
      this.invalid++;
      return false;
    }
    const first = this.#seen.get(reply.sender);
    if (first !== undefined) {
      if (first === reply.hash) this.duplicates++;
      else this.#conflicting.add(reply.sender);
      return false;
    }
    this.#seen.set(reply.sender, reply.hash);
    if (this.#expectedIdentities && !this.#expectedIdentities.has(reply.sender))
      this.unexpected.push(reply.sender);
    this.replies.push(reply);
    return true;
  }

  get conflicting(): string[] {
    return [...this.#conflicting];
  }

  get complete(): boolean {
    const target = this.options.expected ?? this.#expectedIdentities?.size;
    return target !== undefined && this.replies.length - this.unexpected.length >= target;
  }
}

/** One turn of the event loop: I/O that is ready (replies in the socket) is handled before it resolves. */
function ioTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The stall rule: `onStall` once no message has arrived for `idleMs`. Quiet is measured from the last
 * message as it arrives, not from the last reply once checked, and it is judged only after the replies
 * already received are checked and one turn of I/O has run: a process that was itself stalled (busy
 * checking replies, collecting garbage, starved of CPU) finds its timer due before it reads the replies
 * waiting in its socket, and a fleet that kept answering through that gap has not stalled.
 */
export class StallWatch {
  #last = 0;
  #cancel: (() => void) | undefined;
  #stopped = false;

  constructor(
    private readonly clock: Clock,
    private readonly idleMs: number,
    private readonly onStall: () => void,
    private readonly busy: () => boolean = () => false,
    private readonly turn: () => Promise<void> = ioTurn,
  ) {}

  /** A message arrived: the quiet starts again. The first one starts the watch. */
  arrived(): void {
    this.#last = this.clock.now();
    if (this.#cancel === undefined && !this.#stopped) this.#arm(this.idleMs);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
  }

  #arm(ms: number): void {
    this.#cancel = this.clock.after(ms, () => void this.#due());
  }

  async #due(): Promise<void> {
    const quiet = this.clock.now() - this.#last;
    if (quiet < this.idleMs) return this.#arm(this.idleMs - quiet);
    if (this.busy()) return this.#arm(this.idleMs);
    const last = this.#last;
    await this.turn();
    if (this.#stopped) return;
    if (this.#last !== last || this.busy()) return this.#arm(this.idleMs);
    this.#stopped = true;
    this.onStall();
  }
}

/**
 * Collects replies to `requestId` arriving on `subject` until the expected count is reached, no reply has
 * come for `idleMs`, or `timeoutMs` passes. Subscribe before publishing the request: `ready` resolves
 * once the server has registered the subscription (read it only when publishing on another connection).
 */
export function collectReplies(
  bus: MessageBus,
  subject: string,
  requestId: string,
  options: CollectOptions,
): { ready: Promise<void>; result: Promise<Collection> } {
  const started = Date.now();
  const tally = new ReplyTally(requestId, options);
  let finish: (reason: DoneReason) => void = () => {};
  const result = new Promise<Collection>((resolve) => {
    const hardTimer = setTimeout(() => finish("timeout"), options.timeoutMs);
    const cancel = () => finish("cancelled");
    let finished = false;
    const opening = new Set<Promise<void>>();
    let lastArrival: number | undefined;
    const stall =
      options.idleMs === undefined
        ? undefined
        : new StallWatch(
            options.clock ?? realClock,
            options.idleMs,
            () => finish("idle"),
            () => opening.size > 0,
          );
    finish = (done) => {
      if (finished) return;
      finished = true;
      const ended = Date.now();
      clearTimeout(hardTimer);
      stall?.stop();
      options.signal?.removeEventListener("abort", cancel);
      sub.unsubscribe();
      void Promise.all(opening).then(() =>
        resolve({
          replies: tally.replies,
          duplicates: tally.duplicates,
          conflicting: tally.conflicting,
          invalid: tally.invalid,
          unexpected: tally.unexpected,
          done,
          elapsedMs: Date.now() - started,
          quietMs: lastArrival === undefined ? null : ended - lastArrival,
        }),
      );
    };
    const take = (opened: Decoded<NodeReply>) => {
      if (finished) return;
      if (!opened.ok) {
        tally.invalid++;
        return;
      }
      if (!tally.accept(opened.value)) return;
      options.onReply?.(opened.value);
      if (tally.complete) finish("expected");
    };
    const digest = options.digest;
    const sub = (options.feed ?? bus).subscribe(subject, (msg) => {
      lastArrival = Date.now();
      stall?.arrived();
      if (digest !== undefined) return take(openReplySync(msg.data, digest));
      const work = openReply(msg.data).then(take);
      opening.add(work);
      void work.finally(() => opening.delete(work));
    });
    if (options.signal?.aborted) cancel();
    else options.signal?.addEventListener("abort", cancel, { once: true });
  });
  // `ready` costs a PING round trip, so it is sent only for a caller that asks: a publisher on the same
  // connection needs none, since the server handles its SUB before the PUBs that follow.
  let ready: Promise<void> | undefined;
  return {
    get ready() {
      ready ??= bus.flush();
      return ready;
    },
    result,
  };
}
