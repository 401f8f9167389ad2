import { replySubject } from "../protocol/mod.ts";
import type { MessageBus } from "../transport/mod.ts";

type BusHandler = Parameters<MessageBus["subscribe"]>[1];
type BusSubscription = ReturnType<MessageBus["subscribe"]>;

/** Where a collection takes its replies from: a bus, or a router sharing one subscription. */
export interface ReplyFeed {
  subscribe(subject: string, handler: BusHandler): Pick<BusSubscription, "unsubscribe">;
}

export interface ReplyRouterStats {
  /** Collections waiting for replies now. */
  waiting: number;
  /** Wildcard subscriptions held on the bus (one per collective and caller id used). */
  subscriptions: number;
  routed: number;
  /** Replies for no waiting collection: late (after its end) or for a request this process never made. */
  dropped: number;
}

/**
 * One long-lived wildcard subscription per collective and caller id instead of a SUB and an UNSUB for
 * every request, which cost a process answering many small requests a socket write each and the client's
 * subscription bookkeeping. Inboxes are `<collective>.reply.<md5(callerid)>.<token>.<request id>`: still
 * within the caller's `<collective>.reply.<md5>.>` permission, and the random token keeps another process
 * signing for the same caller id (a second gateway replica) out of this one's replies.
 */
export class ReplyRouter implements ReplyFeed {
  readonly #bus: MessageBus;
  readonly #token: string;
  readonly #wildcards = new Map<string, BusSubscription>();
  readonly #waiters = new Map<string, BusHandler>();
  #routed = 0;
  #dropped = 0;

  constructor(bus: MessageBus, token = `r${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`) {
    this.#bus = bus;
    this.#token = token;
  }

  /** The reply subject for a request; its wildcard subscription goes out now, before any publish. */
  inbox(collective: string, callerid: string, requestId: string): string {
    const subject = replySubject(collective, callerid, `${this.#token}.${requestId}`);
    const prefix = subject.slice(0, subject.length - requestId.length);
    if (!this.#wildcards.has(prefix))
      this.#wildcards.set(
        prefix,
        this.#bus.subscribe(`${prefix}*`, (msg) => this.#route(msg)),
      );
    return subject;
  }

  subscribe(subject: string, handler: BusHandler): Pick<BusSubscription, "unsubscribe"> {
    this.#waiters.set(subject, handler);
    return {
      unsubscribe: () => {
        if (this.#waiters.get(subject) === handler) this.#waiters.delete(subject);
      },
    };
  }

  stats(): ReplyRouterStats {
    return {
      waiting: this.#waiters.size,
      subscriptions: this.#wildcards.size,
      routed: this.#routed,
      dropped: this.#dropped,
    };
  }

  #route(msg: Parameters<BusHandler>[0]): void {
    const waiter = this.#waiters.get(msg.subject);
    if (waiter === undefined) {
      this.#dropped++;
      return;
    }
    this.#routed++;
    waiter(msg);
  }
}

// A bus's router lives as long as the bus: a closed connection is never used again, and its router (with
// its subscriptions) goes with it.
const routers = new WeakMap<MessageBus, ReplyRouter>();

/** The one router of a bus, made on first use. */
export function replyRouter(bus: MessageBus): ReplyRouter {
  let router = routers.get(bus);
  if (router === undefined) {
    router = new ReplyRouter(bus);
    routers.set(bus, router);
  }
  return router;
}
