import {
  type ClientIdentity,
  federatedPackets,
  type ReplyDigest,
  type SignedRequest,
  signDiscoveryRequest,
  signRpcRequest,
} from "../client/mod.ts";
import type { Filter } from "../protocol/mod.ts";
import {
  broadcastSubject,
  encodeTransport,
  federationSubject,
  newRequestId,
  nodeSubject,
  type TransportDialect,
} from "../protocol/mod.ts";
import type { MessageBus } from "../transport/mod.ts";
import { type Collection, collectReplies, type DoneReason } from "./collect-replies.ts";
import { type Limit, type LimitMethod, limitTargets, uniqueTargets } from "./limit.ts";
import { replyRouter } from "./reply-router.ts";
import {
  type DiscoveryEnd,
  type DiscoveryOutcome,
  type ReplyEntry,
  type RpcResult,
  replyEntry,
  summarise,
} from "./summary.ts";

/**
 * Who gets the request:
 * - `nodes`: the caller names them; directed requests, silent ones reported;
 * - `discover`: a broadcast `discovery` ping with the filter first, ended by `timeoutMs` or when replies
 *   stall for `idleMs`, then directed requests to whoever answered (what Choria clients do);
 * - `broadcast`: one broadcast request and no discovery; who should have answered is unknown.
 */
type Addressing =
  | { kind: "nodes"; nodes: readonly string[] }
  | { kind: "discover"; timeoutMs: number; idleMs: number }
  | { kind: "broadcast" };

export interface RpcPlan {
  /** Federation broker cluster: requests are published to `choria.federation.<cluster>.federation`. */
  cluster: string;
  collective: string;
  agent: string;
  action: string;
  data: Record<string, unknown>;
  filter: Partial<Filter>;
  addressing: Addressing;
  limit?: Limit;
  limitMethod?: LimitMethod;
  /** Replies that make the request complete; wins over the target count. */
  expect?: number;
  /** How long to wait for replies once the request is out. */
  timeoutMs: number;
  /** End the collection when replies stall this long after the first one. */
  idleMs?: number;
  /** Choria request TTL in seconds. */
  ttl?: number;
  /** The cluster's wire dialect; default `v1`. */
  dialect?: TransportDialect;
}

/** The outcome of discovery and `limit`: who the request goes to. */
export interface Targets {
  /** Nodes discovered or named, before the limit; undefined in broadcast mode. */
  discovered?: number;
  /** The identities the request goes to; undefined in broadcast mode. */
  identities?: string[];
  discoveryMs?: number;
  /** How discovery ended; undefined when there was none. */
  discovery?: DiscoveryOutcome;
  /** The filter the RPC carries: discovery adds the agent, as go-choria's client does. */
  filter: Partial<Filter>;
  /** Discovery was cut short by the abort signal. */
  cancelled: boolean;
}

export interface RpcHooks {
  /** Called once, with the request id, just before the request goes out. */
  onStart?: (start: { requestId: string; discovered: number | null; expected: number | null }) => void;
  onReply?: (entry: ReplyEntry) => void;
  /**
   * Called once the request's packets are queued on the bus, in the same turn: whatever the caller queues
   * then (a PING) shares their socket write.
   */
  onPublished?: () => void;
  /** Checks reply hashes at once (Node's createHash) rather than through a promise per reply. */
  replyDigest?: ReplyDigest;
  /** Ends the collection early; the result then says `cancelled`. */
  signal?: AbortSignal;
  /** When the caller's clock started, for `elapsed_ms`; now by default. */
  startedAt?: number;
  /** Milliseconds clock; `Date.now` by default. */
  now?: () => number;
  /**
   * The request's id and reply subject when someone else takes its replies too (an async job's collectors,
   * which store them while this call collects its own copy); a new id and the caller's inbox by default.
   */
  route?: { requestId: string; replyTo: string };
}

/** A publish the NATS client refused (closed connection, over max_payload or its reconnect buffer). */
export class PublishRefused extends Error {
  override readonly name = "PublishRefused";
}

/**
 * Decides the targets: the caller's nodes, or whoever answers a discovery ping with the filter through
 * the federation; then `limit`. Broadcast mode has no targets. Throws PublishRefused.
 */
export async function resolveTargets(
  bus: MessageBus,
  client: ClientIdentity,
  plan: RpcPlan,
  options: Pick<RpcHooks, "signal" | "now" | "onPublished" | "replyDigest"> = {},
): Promise<Targets> {
  const now = options.now ?? Date.now;
  const addressing = plan.addressing;
  if (addressing.kind === "broadcast") return { filter: plan.filter, cancelled: false };
  if (addressing.kind === "nodes") {
    const named = uniqueTargets(addressing.nodes);
    return {
      discovered: named.length,
      identities: limitTargets(named, plan.limit, plan.limitMethod),
      filter: plan.filter,
      cancelled: false,
    };
  }
  const started = now();
  const filter = withAgent(plan.filter, plan.agent);
  const signed = await signDiscoveryRequest(client, { collective: plan.collective, filter, ttl: plan.ttl });
  const { inbox, feed } = ownInbox(bus, plan.collective, client.callerid, signed.request.envelope.requestid);
  const found = await publishAndCollect(
    bus,
    client,
    plan,
    signed,
    [broadcastSubject(plan.collective, "discovery")],
    inbox,
    {
      timeoutMs: addressing.timeoutMs,
      idleMs: addressing.idleMs,
      feed,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onPublished ? { onPublished: options.onPublished } : {}),
      ...(options.replyDigest ? { digest: options.replyDigest } : {}),
    },
  );
  // Each sender becomes a node subject; one that cannot be (a broken or hostile node's id) is left out
  // rather than failing the request for every node that answered properly.
  const discovered = found.replies.map((r) => r.sender).filter((id) => addressable(plan.collective, id));
  return {
    discovered: discovered.length,
    identities: limitTargets(discovered, plan.limit, plan.limitMethod),
    discoveryMs: now() - started,
    discovery: discoveryOutcome(found, discovered.length, addressing.idleMs),
    filter,
    cancelled: found.done === "cancelled",
  };
}

/**
 * How a discovery collection ended. Complete only when its window ran out with the fleet quiet (or
 * silent): replies still coming when it closed, or a stall that ended it early, leave nodes that may not
 * have answered yet.
 */
export function discoveryOutcome(
  collection: Pick<Collection, "done" | "quietMs">,
  found: number,
  idleMs: number,
): DiscoveryOutcome {
  const reason: DiscoveryEnd =
    collection.done === "idle" ? "stall" : collection.done === "cancelled" ? "cancelled" : "timeout";
  const quiet = collection.quietMs === null || collection.quietMs >= idleMs;
  return { complete: reason === "timeout" && quiet, found, reason };
}

function addressable(collective: string, identity: string): boolean {
  try {
    nodeSubject(collective, identity);
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends the RPC to the targets the way `choria req` does, through a federation: directed requests in
 * federated packets of at most 200 targets (one broadcast request without targets), collected on the
 * caller's own reply subject until done. Throws PublishRefused when the bus will not take a packet;
 * everything the nodes do or fail to do is in the result.
 */
export async function sendRpc(
  bus: MessageBus,
  client: ClientIdentity,
  plan: RpcPlan,
  targets: Targets,
  hooks: RpcHooks = {},
): Promise<RpcResult> {
  const now = hooks.now ?? Date.now;
  const startedAt = hooks.startedAt ?? now();
  const requestId = hooks.route?.requestId ?? newRequestId();
  const identities = targets.identities;
  const expected = plan.expect ?? identities?.length;
  const entries: ReplyEntry[] = [];
  const finished = (done: DoneReason, collection?: Collection): RpcResult =>
    summarise({
      requestId,
      ...(targets.discovered === undefined ? {} : { discovered: targets.discovered }),
      ...(identities === undefined ? {} : { targets: identities }),
      ...(plan.expect === undefined ? {} : { expect: plan.expect }),
      entries,
      unexpected: collection?.unexpected ?? [],
      conflicting: collection?.conflicting ?? [],
      done,
      ...(targets.discoveryMs === undefined ? {} : { discoveryMs: targets.discoveryMs }),
      ...(targets.discovery === undefined ? {} : { discovery: targets.discovery }),
      elapsedMs: now() - startedAt,
    });

  if (targets.cancelled) return finished("cancelled");
  hooks.onStart?.({ requestId, discovered: targets.discovered ?? null, expected: expected ?? null });
  if (expected === 0 || identities?.length === 0) return finished("expected");

  const signed = await signPlan(client, plan, targets, requestId);
  const subjects = rpcSubjects(plan, targets);
  let publishedAt = now();
  // A job's route is the collectors' subject, read here by a subscription of its own.
  const { inbox, feed } =
    hooks.route === undefined
      ? ownInbox(bus, plan.collective, client.callerid, requestId)
      : { inbox: hooks.route.replyTo, feed: undefined };
  const collection = await publishAndCollect(bus, client, plan, signed, subjects, inbox, {
    ...(feed === undefined ? {} : { feed }),
    ...(plan.expect === undefined ? {} : { expected: plan.expect }),
    ...(identities === undefined ? {} : { expectedIdentities: identities }),
    timeoutMs: plan.timeoutMs,
    ...(plan.idleMs === undefined ? {} : { idleMs: plan.idleMs }),
    ...(hooks.signal ? { signal: hooks.signal } : {}),
    onPublishing: () => {
      publishedAt = now();
    },
    ...(hooks.onPublished ? { onPublished: hooks.onPublished } : {}),
    ...(hooks.replyDigest ? { digest: hooks.replyDigest } : {}),
    onReply: (reply) => {
      const entry = replyEntry(reply, now() - publishedAt);
      entries.push(entry);
      hooks.onReply?.(entry);
    },
  });
  return finished(collection.done, collection);
}

/**
 * Signs the RPC and publishes it to the targets like sendRpc, but with `replyTo` as its reply-to and
 * nothing collected here: the replies go to whoever takes that subject (the async job collectors).
 * Throws PublishRefused.
 */
export async function publishRpc(
  bus: MessageBus,
  client: ClientIdentity,
  plan: RpcPlan,
  targets: Targets,
  options: { requestId: string; replyTo: string },
): Promise<void> {
  const signed = await signPlan(client, plan, targets, options.requestId);
  publishFederated(bus, client, plan, signed, rpcSubjects(plan, targets), options.replyTo);
  await bus.flush();
}

/** A reply subject of this process's own, and the router that hands its replies over. */
function ownInbox(bus: MessageBus, collective: string, callerid: string, requestId: string) {
  const feed = replyRouter(bus);
  return { inbox: feed.inbox(collective, callerid, requestId), feed };
}

function rpcSubjects(plan: RpcPlan, targets: Targets): string[] {
  return targets.identities
    ? targets.identities.map((identity) => nodeSubject(plan.collective, identity))
    : [broadcastSubject(plan.collective, plan.agent)];
}

function publishFederated(
  bus: MessageBus,
  client: ClientIdentity,
  { cluster, dialect }: Pick<RpcPlan, "cluster" | "dialect">,
  signed: SignedRequest,
  subjects: readonly string[],
  replyTo: string,
): void {
  const url = bus.connectedUrl();
  const packets = federatedPackets(signed, subjects, {
    replyTo,
    sender: client.senderid,
    hop: [url, client.senderid, url],
    ...(dialect ? { dialect } : {}),
  });
  const subject = federationSubject(cluster);
  for (const packet of packets) {
    if (!bus.publish(subject, encodeTransport(packet)))
      throw new PublishRefused(`the NATS connection refused a publish to ${subject}`);
  }
}

type CollectOptions = Parameters<typeof collectReplies>[3] & {
  onPublishing?: () => void;
  onPublished?: () => void;
};

/**
 * Subscribes to the request's reply subject, publishes its federated packets and collects. The server
 * handles one connection's SUB before its PUBs, so replies cannot beat the subscription and there is no
 * round trip to wait for first. A refused publish ends the collection before it is rethrown.
 */
async function publishAndCollect(
  bus: MessageBus,
  client: ClientIdentity,
  route: Pick<RpcPlan, "cluster" | "dialect">,
  signed: SignedRequest,
  subjects: readonly string[],
  inbox: string,
  options: CollectOptions,
): Promise<Collection> {
  const { requestid } = signed.request.envelope;
  const { onPublishing, onPublished, ...collect } = options;
  const stop = linkedAbort(options.signal);
  const collection = collectReplies(bus, inbox, requestid, { ...collect, signal: stop.signal });
  const collected = collection.result.finally(stop.unlink);
  try {
    onPublishing?.();
    publishFederated(bus, client, route, signed, subjects, inbox);
  } catch (err) {
    stop.abort();
    await collected;
    throw err;
  }
  onPublished?.();
  return collected;
}

/** An abort controller that also follows `parent`, so a collection can be ended from either side. */
function linkedAbort(parent: AbortSignal | undefined): AbortController & { unlink(): void } {
  const controller = new AbortController();
  const follow = () => controller.abort();
  if (parent?.aborted) controller.abort();
  else parent?.addEventListener("abort", follow, { once: true });
  return Object.assign(controller, { unlink: () => parent?.removeEventListener("abort", follow) });
}

function withAgent(filter: Partial<Filter>, agent: string): Partial<Filter> {
  const agents = filter.agent ?? [];
  return agents.includes(agent) ? filter : { ...filter, agent: [...agents, agent] };
}

function signPlan(client: ClientIdentity, plan: RpcPlan, targets: Targets, requestId: string) {
  return signRpcRequest(client, {
    agent: plan.agent,
    action: plan.action,
    data: plan.data,
    collective: plan.collective,
    filter: targets.filter,
    ttl: plan.ttl,
    requestId,
  });
}
