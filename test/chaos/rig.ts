// The federation the broker scenarios break: a federation and a member-collective nats-server, broker
// processes between them, three responding nodes, and a client streaming broadcast requests.
import type { MessageBus } from "../../lib/transport/bus.ts";
import {
  type BrokerProcess,
  bus,
  COLLECTIVE,
  collectReplies,
  federatedRequest,
  httpStatus,
  publishRequest,
  type ReplyLog,
  requestId,
  sleep,
  spawnBroker,
  startResponders,
} from "../integration/federation/support.ts";
import { type NatsServer, startNatsServer } from "../support/nats-server.ts";
import {
  addCounts,
  type BrokerBooks,
  brokerBooks,
  type Row,
  type Scope,
  totals,
  unbalanced,
  until,
} from "./support.ts";

export const NODES = ["node1.example.net", "node2.example.net", "node3.example.net"];
export const BROADCAST = `${COLLECTIVE}.broadcast.agent.rpcutil`;

export interface Rig {
  federation: NatsServer;
  collective: NatsServer;
  brokers: BrokerProcess[];
  client: MessageBus;
  nodes: MessageBus;
  replies: ReplyLog;
  /** Requests each responding node received. */
  heard: Map<string, number>;
}

export interface RigOptions {
  /** Puts a broker's connection to one side through another URL (a proxy). */
  via?: (name: string, urls: { federation: string; collective: string }) => typeof urls;
  /** Runs once the servers listen, before any broker starts. */
  prepare?: (servers: { federation: NatsServer; collective: NatsServer }) => Promise<void>;
  /** JetStream on the federation server, for a collector. */
  jetstream?: boolean;
}

/** Starts the rig; everything is killed when the scope closes. */
export async function startRig(scope: Scope, names: string[], options: RigOptions = {}): Promise<Rig> {
  const [federation, collective] = await Promise.all([
    startNatsServer({ name: "federation", jetstream: options.jetstream ?? false }).then((s) =>
      scope.watchServer(s),
    ),
    startNatsServer({ name: "collective" }).then((s) => scope.watchServer(s)),
  ]);
  await options.prepare?.({ federation, collective });
  const brokers = await Promise.all(
    names.map((name) => {
      const direct = { federation: federation.url, collective: collective.url };
      const urls = options.via?.(name, direct) ?? direct;
      return spawnBroker(name, urls.federation, urls.collective);
    }),
  );
  for (const broker of brokers) {
    scope.watch(broker.child.pid);
    scope.defer(() => broker.kill("SIGKILL"));
  }
  const client = await bus(federation.url, "chaos-client");
  const nodes = await bus(collective.url, "chaos-nodes");
  scope.defer(() => client.close());
  scope.defer(() => nodes.close());
  const { received: heard } = startResponders(nodes, NODES);
  const replies = collectReplies(client);
  await Promise.all([client.flush(), nodes.flush()]);
  return { federation, collective, brokers, client, nodes, replies, heard };
}

export interface Sent {
  rid: string;
  at: number;
}

/** Broadcast requests one every `gapMs` until stopped; a publish the client refuses is counted, not thrown. */
export class RequestStream {
  readonly sent: Sent[] = [];
  refused = 0;
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(client: () => MessageBus, gapMs: number) {
    this.#done = (async () => {
      while (!this.#stopped) {
        const rid = requestId();
        try {
          publishRequest(client(), federatedRequest(rid, [BROADCAST]));
          this.sent.push({ rid, at: Date.now() });
        } catch {
          this.refused++;
        }
        await sleep(gapMs);
      }
    })();
  }

  async stop(): Promise<Sent[]> {
    this.#stopped = true;
    await this.#done;
    return this.sent;
  }
}

export interface Outcome {
  answered: number;
  incomplete: Sent[];
  duplicated: number;
}

/**
 * Waits up to `waitMs` for every request to have all its replies, giving up early once no reply has
 * arrived for a second (what an outage lost never comes), then a moment more for duplicates.
 */
export async function settle(replies: ReplyLog, sent: Sent[], waitMs: number): Promise<Outcome> {
  const complete = (s: Sent) => (replies.byRequest.get(s.rid)?.length ?? 0) >= NODES.length;
  let seen = -1;
  let quietSince = Date.now();
  await until(() => {
    if (replies.packets.length !== seen) {
      seen = replies.packets.length;
      quietSince = Date.now();
    }
    return sent.every(complete) || Date.now() - quietSince > 1000;
  }, waitMs);
  await sleep(300);
  let duplicated = 0;
  for (const { rid } of sent) {
    const got = replies.byRequest.get(rid) ?? [];
    duplicated += got.length - new Set(got).size;
  }
  const incomplete = sent.filter((s) => !complete(s));
  return { answered: sent.length - incomplete.length, incomplete, duplicated };
}

/** The first request sent at or after `from` that got every reply: when the system answered again. */
export function firstAnsweredAfter(replies: ReplyLog, sent: Sent[], from: number): number | null {
  const first = sent.find((s) => s.at >= from && (replies.byRequest.get(s.rid)?.length ?? 0) >= NODES.length);
  return first === undefined ? null : (first.at - from) / 1000;
}

/** Fills a row from a stream's outcome and the books of the brokers still running. */
export async function fillRow(
  row: Row,
  outcome: Outcome,
  sent: Sent[],
  living: BrokerProcess[],
  before: BrokerBooks[] = [],
): Promise<BrokerBooks[]> {
  row.sent += sent.length;
  row.answered += outcome.answered;
  row.lost += outcome.incomplete.length;
  row.duplicated += outcome.duplicated;
  const books = await Promise.all(living.map((b) => brokerBooks(b.httpUrl)));
  const problems = unbalanced(
    books,
    living.map((b) => b.instance),
  );
  if (problems.length > 0) row.booksBalanced = false;
  row.problems.push(...problems);
  const delta = totals(books, before.length === books.length ? before : []);
  addCounts(row.refused, delta.refused);
  addCounts(row.refused, delta.dropped, "dropped:");
  return books;
}

export async function waitReady(broker: BrokerProcess, ready: boolean, timeoutMs: number): Promise<boolean> {
  return until(async () => ((await httpStatus(`${broker.httpUrl}/readyz`)) === 200) === ready, timeoutMs);
}
