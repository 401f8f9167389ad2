// One request's hold on NATS: the lease, the abort that ends its collection, and the one check that tells
// a collection cut short because NATS went silent from one the caller walked away from.
import type { ClientIdentity } from "../client/mod.ts";
import type { RequestSigner } from "../security/mod.ts";
import type { MessageBus } from "../transport/mod.ts";
import { confirm, type PingOutcome, ServerTiming, valueWithin } from "./http.ts";
import type { NatsSource } from "./nats.ts";
import { type Refusal, refuse, refuseForNow } from "./refusal.ts";

export interface Upstream {
  readonly bus: MessageBus;
  readonly client: ClientIdentity;
  /** Aborted when the caller goes away, or NATS does not answer the ping. */
  readonly abort: AbortController;
  /**
   * Called when the request's first packet is queued on the bus: its liveness PING is queued right behind
   * it, so that both leave in one socket write (nats.js writes a PING at once, with whatever is queued).
   */
  readonly published: () => void;
  /** Server-Timing so far: authentication and getting the connection. */
  readonly timing: ServerTiming;
  /**
   * Why a collection that ended `cancelled` did so when NATS was the cause: 503 upstream-unavailable when
   * the connection dropped (it is reconnecting: try again), 504 timeout when the server went silent;
   * undefined when it ran to its end, or its caller went away.
   */
  lost(cancelled: boolean): Promise<Refusal | undefined>;
  /** Throws that problem (a 503 with Retry-After). */
  refuseIfLost(cancelled: boolean): Promise<void>;
  /** From here the caller going away no longer aborts the collection. */
  detach(): void;
  /** Gives the connection back; once, however often it is called. */
  release(): void;
}

export interface UpstreamOptions {
  nats: NatsSource;
  signer: RequestSigner;
  senderid: string;
  connectTimeoutMs: number;
  now: () => number;
}

export async function connectUpstream(
  options: UpstreamOptions,
  request: Request,
  run: { callerId: string; authStarted: number },
): Promise<Upstream> {
  const { now, connectTimeoutMs } = options;
  const acquireStarted = now();
  const lease = await options.nats.acquire();
  const timing = new ServerTiming()
    .add("auth", acquireStarted - run.authStarted, "authentication, validation and policy")
    .add("nats", now() - acquireStarted, "getting a NATS connection");
  const abort = new AbortController();
  const clientGone = () => abort.abort();
  request.signal.addEventListener("abort", clientGone, { once: true });
  // A PING round trip runs beside discovery or collection: a connection that looks up but no longer
  // reaches the server (a frozen Lambda, a half-open socket) ends the request instead of running into its
  // timeout. A request that never published has nothing out there to lose.
  let alive: Promise<PingOutcome> | undefined;
  const published = () => {
    if (alive !== undefined) return;
    alive = confirm(lease.bus, connectTimeoutMs);
    void alive.then((outcome) => outcome === "answered" || abort.abort());
  };
  const lost = async (cancelled: boolean) => {
    const outcome = cancelled && alive !== undefined ? await valueWithin(alive, 0) : undefined;
    if (outcome === "dropped")
      return refuseForNow(
        "upstream-unavailable",
        "the NATS connection dropped while the request was out; try again",
      );
    if (outcome === "silent")
      return refuse("timeout", `NATS did not answer a ping within ${connectTimeoutMs} ms`);
    return undefined;
  };
  let released = false;
  return {
    bus: lease.bus,
    client: { signer: options.signer, callerid: run.callerId, senderid: options.senderid },
    abort,
    published,
    timing,
    lost,
    async refuseIfLost(cancelled) {
      const refusal = await lost(cancelled);
      if (refusal !== undefined) throw refusal;
    },
    detach: () => request.signal.removeEventListener("abort", clientGone),
    release() {
      if (released) return;
      released = true;
      void lease.release();
    },
  };
}
