import * as z from "zod";
import { STATS_PROTOCOL, type StatsDocument } from "./stats.ts";

const sideSchema = z.looseObject({
  connected_server: z.string(),
  received: z.number(),
  sent: z.number(),
  errors: z.number(),
  in_flight: z.number(),
});

// Observers read what other processes publish: check the fields the view uses, let the rest be.
const statsDocumentSchema = z.looseObject({
  protocol: z.literal(STATS_PROTOCOL),
  cluster: z.string(),
  instance: z.string(),
  identity: z.string(),
  time: z.number(),
  status: z.string(),
  federation: sideSchema,
  collective: sideSchema,
  refused: z.record(z.string(), z.number()),
  dropped: z.record(z.string(), z.number()),
});

/** A stats document from the wire, or undefined when it is not one. */
export function parseStatsDocument(text: string): StatsDocument | undefined {
  try {
    const result = statsDocumentSchema.safeParse(JSON.parse(text));
    return result.success ? (result.data as unknown as StatsDocument) : undefined;
  } catch {
    return undefined;
  }
}

interface InstanceView {
  instance: string;
  identity: string;
  status: string;
  /** Messages in: requests from the federation plus replies from the collective. */
  received: number;
  /** Messages out: request copies into the collective plus replies into the federation. */
  sent: number;
  receivedShare: number;
  sentShare: number;
  /** Per second, over the last two documents; 0 until there are two. */
  receivedRate: number;
  sentRate: number;
  inFlight: number;
  errors: number;
  refused: Record<string, number>;
  federationServer: string;
  collectiveServer: string;
  /** Milliseconds since this instance's last document. */
  age: number;
}

export interface ClusterSnapshot {
  cluster: string;
  instances: InstanceView[];
  totals: {
    received: number;
    sent: number;
    receivedRate: number;
    sentRate: number;
    errors: number;
    inFlight: number;
  };
}

interface Seen {
  doc: StatsDocument;
  at: number;
  previous?: { doc: StatsDocument; at: number };
}

const received = (doc: StatsDocument) => doc.federation.received + doc.collective.received;
const sent = (doc: StatsDocument) => doc.federation.sent + doc.collective.sent;

/**
 * Live picture of a broker cluster from the stats each instance publishes: totals, each instance's share
 * of the work, and rates. Instances silent for longer than `staleAfterMs` drop out (stopped or gone).
 */
export class ClusterView {
  private readonly instances = new Map<string, Seen>();

  constructor(
    readonly cluster: string,
    private readonly staleAfterMs: number,
  ) {}

  /** Takes a document; false when it belongs to another cluster. */
  update(doc: StatsDocument, at: number): boolean {
    if (doc.cluster !== this.cluster) return false;
    const last = this.instances.get(doc.instance);
    // A restarted instance starts counting from zero again; rates across that restart mean nothing.
    const restarted = last !== undefined && received(doc) < received(last.doc);
    this.instances.set(doc.instance, {
      doc,
      at,
      ...(last && !restarted ? { previous: { doc: last.doc, at: last.at } } : {}),
    });
    return true;
  }

  snapshot(now: number): ClusterSnapshot {
    for (const [name, seen] of this.instances)
      if (now - seen.at > this.staleAfterMs) this.instances.delete(name);
    const all = [...this.instances.values()].sort((a, b) => a.doc.instance.localeCompare(b.doc.instance));
    const totalReceived = all.reduce((n, s) => n + received(s.doc), 0);
    const totalSent = all.reduce((n, s) => n + sent(s.doc), 0);
    const instances = all.map(({ doc, at, previous }): InstanceView => {
      const seconds = previous ? (at - previous.at) / 1000 : 0;
      const rate = (now: number, then: number) => (seconds > 0 ? Math.max(0, now - then) / seconds : 0);
      return {
        instance: doc.instance,
        identity: doc.identity,
        status: doc.status,
        received: received(doc),
        sent: sent(doc),
        receivedShare: totalReceived > 0 ? received(doc) / totalReceived : 0,
        sentShare: totalSent > 0 ? sent(doc) / totalSent : 0,
        receivedRate: previous ? rate(received(doc), received(previous.doc)) : 0,
        sentRate: previous ? rate(sent(doc), sent(previous.doc)) : 0,
        inFlight: doc.federation.in_flight + doc.collective.in_flight,
        errors: doc.federation.errors + doc.collective.errors,
        refused: doc.refused as Record<string, number>,
        federationServer: doc.federation.connected_server,
        collectiveServer: doc.collective.connected_server,
        age: now - at,
      };
    });
    return {
      cluster: this.cluster,
      instances,
      totals: {
        received: totalReceived,
        sent: totalSent,
        receivedRate: instances.reduce((n, i) => n + i.receivedRate, 0),
        sentRate: instances.reduce((n, i) => n + i.sentRate, 0),
        errors: instances.reduce((n, i) => n + i.errors, 0),
        inFlight: instances.reduce((n, i) => n + i.inFlight, 0),
      },
    };
  }
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
const rate = (perSecond: number) => `${perSecond.toFixed(perSecond < 10 ? 1 : 0)}/s`;

/** The snapshot as a text table, as `choria-edge observe` shows it. */
export function renderClusterSnapshot(snapshot: ClusterSnapshot, at: Date): string {
  const header = [
    "instance",
    "status",
    "received",
    "share",
    "rate",
    "sent",
    "share",
    "rate",
    "in flight",
    "errors",
  ];
  const rows = snapshot.instances.map((i) => [
    i.instance,
    i.status,
    String(i.received),
    percent(i.receivedShare),
    rate(i.receivedRate),
    String(i.sent),
    percent(i.sentShare),
    rate(i.sentRate),
    String(i.inFlight),
    String(i.errors),
  ]);
  const t = snapshot.totals;
  const total = [
    "total",
    `${snapshot.instances.length} up`,
    String(t.received),
    "",
    rate(t.receivedRate),
    String(t.sent),
    "",
    rate(t.sentRate),
    String(t.inFlight),
    String(t.errors),
  ];
  const table = [header, ...rows, total];
  const widths = header.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, c) => (c === 0 || c === 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join("  ");
  const refusals = new Map<string, number>();
  for (const i of snapshot.instances) {
    for (const [reason, n] of Object.entries(i.refused))
      refusals.set(reason, (refusals.get(reason) ?? 0) + n);
  }
  const refusedLine =
    refusals.size === 0
      ? "refused: none"
      : `refused: ${[...refusals].map(([reason, n]) => `${reason} ${n}`).join(", ")}`;
  return [
    `federation broker cluster ${snapshot.cluster} at ${at.toISOString()}`,
    "",
    line(header),
    ...rows.map(line),
    line(total),
    "",
    refusedLine,
  ].join("\n");
}
