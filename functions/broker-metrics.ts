// The broker's /metrics body, formatted by prom-client. lib/federation keeps its own counters and hands
// them over as plain metric families, so the broker core needs no metrics client; each family here
// copies the latest values at scrape time.
import { Counter, Gauge, Registry, Summary, type SummaryConfiguration } from "prom-client";
import type { MetricFamily, MetricSample } from "../lib/federation/mod.ts";

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

/**
 * prom-client's Summary takes observations one at a time; the broker already holds each stage's sum and
 * count, so this one reports those as they are.
 */
class TotalsSummary extends Summary {
  constructor(
    config: SummaryConfiguration<string>,
    private readonly samples: () => readonly MetricSample[],
  ) {
    super({ ...config, percentiles: [] });
  }

  override async get() {
    const metric = await super.get();
    const values = this.samples().map((s) => ({
      metricName: `${metric.name}${s.suffix ?? ""}`,
      labels: s.labels,
      value: s.value,
    }));
    return { ...metric, values };
  }
}

/**
 * A registry holding one metric per family `read()` returns (read once here for names, help texts and
 * label names); the returned function reads the families again and renders them.
 */
export function brokerMetrics(read: () => readonly MetricFamily[]): () => Promise<string> {
  const registry = new Registry();
  let latest = new Map<string, readonly MetricSample[]>();
  for (const family of read()) {
    const { name, help } = family;
    const samples = () => latest.get(name) ?? [];
    const labelNames = [...new Set(family.samples.flatMap((s) => Object.keys(s.labels)))];
    // This registry only, not prom-client's global one: a process may run several brokers (tests do).
    const config = { name, help, labelNames, registers: [registry] };
    if (family.type === "summary") {
      new TotalsSummary(config, samples);
    } else if (family.type === "counter") {
      new Counter({
        ...config,
        collect() {
          this.reset();
          for (const s of samples()) this.inc(s.labels, s.value);
        },
      });
    } else {
      new Gauge({
        ...config,
        collect() {
          this.reset();
          for (const s of samples()) this.set(s.labels, s.value);
        },
      });
    }
  }
  return () => {
    latest = new Map(read().map((family) => [family.name, family.samples]));
    return registry.metrics();
  };
}
