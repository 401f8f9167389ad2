// What the chaos scenarios share: their sizes, the row each returns, the broker's books read from its
// metrics, peak RSS of the processes a scenario starts, and the clean-up that kills them all.
import type { ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DROP_REASONS, REFUSAL_REASONS } from "../../lib/federation/refusals.ts";
import { httpText, metric } from "../integration/federation/support.ts";
import type { NatsServer } from "../support/nats-server.ts";

export type Size = "short" | "full";

export interface Row {
  scenario: string;
  sent: number;
  answered: number;
  /** Requests that never got every answer they should have. */
  lost: number;
  /** How many of `lost` a killed or cut process held in flight: the loss the issue allows. */
  inFlightOfKilled: number;
  duplicated: number;
  /** By reason: the broker's refusal codes, the nodes' and collector's drop reasons, HTTP statuses. */
  refused: Record<string, number>;
  /** From the fault's end (or the kill) until the system answered again; null where nothing was broken. */
  recoverySeconds: number | null;
  peakRssMiB: number;
  /** Every packet received was routed, refused with a reason or counted as overloaded. */
  booksBalanced: boolean;
  /** What else went wrong, each a sentence; empty on a pass. */
  problems: string[];
}

export function rowPasses(row: Row): boolean {
  return (
    row.booksBalanced && row.lost <= row.inFlightOfKilled && row.duplicated === 0 && row.problems.length === 0
  );
}

export function emptyRow(scenario: string): Row {
  return {
    scenario,
    sent: 0,
    answered: 0,
    lost: 0,
    inFlightOfKilled: 0,
    duplicated: 0,
    refused: {},
    recoverySeconds: null,
    peakRssMiB: 0,
    booksBalanced: true,
    problems: [],
  };
}

export function addCounts(into: Record<string, number>, from: Record<string, number>, prefix = ""): void {
  for (const [reason, n] of Object.entries(from)) {
    if (n === 0) continue;
    into[`${prefix}${reason}`] = (into[`${prefix}${reason}`] ?? 0) + n;
  }
}

/** Peak resident set of a process so far (VmHWM), in bytes; 0 once it is gone. */
export function peakRssBytes(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((l) => l.startsWith("VmHWM:"));
    return line === undefined ? 0 : Number(line.split(/\s+/)[1]) * 1024;
  } catch {
    return 0;
  }
}

/** The nats-server started for `server`, found by the config file only it was started with. */
export function natsServerPid(server: NatsServer): number | undefined {
  const config = join(server.dir, "nats.conf");
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (args.includes(config)) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

/**
 * One scenario's processes and clean-up. VmHWM vanishes with its process, so the peak is sampled on a
 * timer and once more before each kill and at the end.
 */
export class Scope {
  readonly #pids = new Set<number>();
  readonly #peaks = new Map<number, number>();
  readonly #cleanups: (() => Promise<unknown> | unknown)[] = [];
  readonly #timer = setInterval(() => this.sample(), 250);

  constructor(readonly size: Size) {}

  /** `full` at full size, `short` in the CI run. */
  n(full: number, short: number): number {
    return this.size === "full" ? full : short;
  }

  watch(pid: number | undefined): void {
    if (pid !== undefined) this.#pids.add(pid);
  }

  watchServer(server: NatsServer): NatsServer {
    this.watch(natsServerPid(server));
    this.defer(() => server.dispose());
    return server;
  }

  /** Runs at close, last deferred first; failures there are ignored so that every step runs. */
  defer(cleanup: () => Promise<unknown> | unknown): void {
    this.#cleanups.push(cleanup);
  }

  sample(): void {
    for (const pid of this.#pids) {
      const bytes = peakRssBytes(pid);
      if (bytes > (this.#peaks.get(pid) ?? 0)) this.#peaks.set(pid, bytes);
    }
  }

  kill(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): void {
    this.sample();
    child.kill(signal);
  }

  peakRssMiB(): number {
    this.sample();
    return Math.round(Math.max(0, ...this.#peaks.values()) / 1024 / 1024);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.sample();
    for (const cleanup of this.#cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // A process already gone, a connection already closed.
      }
    }
  }
}

export interface SideBooks {
  received: number;
  routed: number;
  refused: Record<string, number>;
  dropped: Record<string, number>;
}

export type BrokerBooks = Record<"federation" | "collective", SideBooks>;

/** One broker's counters, per side a message arrived on, from its /metrics. */
export async function brokerBooks(httpUrl: string): Promise<BrokerBooks> {
  const text = await httpText(`${httpUrl}/metrics`);
  const side = (name: "federation" | "collective"): SideBooks => {
    const other = name === "federation" ? "collective" : "federation";
    const count = (family: string, reasons: readonly string[]) =>
      Object.fromEntries(reasons.map((reason) => [reason, metric(text, family, { side: name, reason })]));
    return {
      received: metric(text, "choria_federation_received_msgs", { name: "nats_ingest", connected_to: name }),
      routed: metric(text, "choria_federation_received_msgs", { name: "nats_egest", connected_to: other }),
      refused: count("choria_edge_federation_refused_msgs", REFUSAL_REASONS),
      dropped: count("choria_edge_federation_dropped_msgs", DROP_REASONS),
    };
  };
  return { federation: side("federation"), collective: side("collective") };
}

export const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** Counters summed over brokers and sides, as the difference from `before` when given. */
export function totals(books: BrokerBooks[], before: BrokerBooks[] = []) {
  const out = {
    received: 0,
    routed: 0,
    refused: {} as Record<string, number>,
    dropped: {} as Record<string, number>,
  };
  const add = (b: BrokerBooks, sign: 1 | -1) => {
    for (const s of [b.federation, b.collective]) {
      out.received += sign * s.received;
      out.routed += sign * s.routed;
      for (const [k, v] of Object.entries(s.refused)) out.refused[k] = (out.refused[k] ?? 0) + sign * v;
      for (const [k, v] of Object.entries(s.dropped)) out.dropped[k] = (out.dropped[k] ?? 0) + sign * v;
    }
  };
  for (const b of books) add(b, 1);
  for (const b of before) add(b, -1);
  return out;
}

/** Received = routed + refused + dropped on each side of each broker; the unbalanced ones, described. */
export function unbalanced(books: BrokerBooks[], names: string[]): string[] {
  const problems: string[] = [];
  for (const [i, b] of books.entries()) {
    for (const side of ["federation", "collective"] as const) {
      const s = b[side];
      const accounted = s.routed + sum(s.refused) + sum(s.dropped);
      if (s.received !== accounted)
        problems.push(
          `${names[i]} ${side}: received ${s.received} but routed ${s.routed} + refused ${sum(s.refused)} + dropped ${sum(s.dropped)}`,
        );
    }
  }
  return problems;
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it did. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
