// The collector's /metrics: its JobRecorder's own counts, copied into prom-client at scrape time (the
// recorder is runtime-neutral and keeps plain numbers), and the NATS connection's state.
import { Counter, Gauge, Registry } from "prom-client";
import type { JobRecorder } from "../lib/results/jobs/mod.ts";

export interface CollectorMetrics {
  render(): Promise<string>;
  readonly contentType: string;
}

/** Counters whose values are read from elsewhere when scraped. */
function copiedCounter(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  read: () => Iterable<[string, number]>,
): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, count] of read()) this.inc({ [label]: value }, count);
    },
  });
}

export function collectorMetrics(recorder: JobRecorder, connected: () => boolean): CollectorMetrics {
  const registry = new Registry();
  const { stats, tallies } = recorder;
  copiedCounter(
    registry,
    "choria_edge_collector_replies_total",
    "Replies taken in, by what became of them (stored, duplicates, conflicts, invalid, late, …)",
    "outcome",
    () =>
      Object.entries(stats).filter(
        ([key]) => !key.startsWith("callback") && !key.startsWith("effects") && key !== "received",
      ),
  );
  copiedCounter(
    registry,
    "choria_edge_collector_callback_attempts_total",
    "Completion callback attempts, by outcome class",
    "outcome",
    () => tallies.callbackAttempts,
  );
  copiedCounter(
    registry,
    "choria_edge_collector_jobs_settled_total",
    "Jobs this instance saw settle, by final state",
    "state",
    () => tallies.jobsEnded,
  );
  copiedCounter(
    registry,
    "choria_edge_collector_effects_total",
    "Trigger effects of ended jobs, by outcome",
    "outcome",
    () => [
      ["applied", stats.effects_applied],
      ["failed", stats.effects_failures],
    ],
  );
  new Gauge({
    name: "choria_edge_collector_nats_connected",
    help: "1 while the collector's NATS connection is up",
    registers: [registry],
    collect() {
      this.set(connected() ? 1 : 0);
    },
  });
  return { render: () => registry.metrics(), contentType: registry.contentType };
}
