import { beforeAll, describe, expect, it } from "vitest";
import { brokerMetrics } from "../../../functions/broker-metrics.ts";
import { FederationStats } from "../../../lib/federation/stats.ts";

function stats() {
  const s = new FederationStats(
    { cluster: "C1", instance: "i1", identity: 'fb"1', version: "test", startTime: 100 },
    () => 200,
  );
  s.connection("federation", true, "nats://fed:4222");
  s.connection("collective", false, "unknown");
  // Requests: 4 received, 1 malformed, 1 target not allowed, 2 routed to 3 targets each, 1 publish failed.
  for (let i = 0; i < 4; i++) s.received("federation");
  s.refused("federation", "malformed");
  s.refused("federation", "target_not_allowed");
  s.routed("federation", 0.001);
  s.routed("federation", 0.003);
  s.published("collective", 5);
  s.dropped("federation", "publish_failed", 1);
  s.egestTime("collective", 0.002);
  // Replies: 3 received, 1 overloaded, 2 routed.
  for (let i = 0; i < 3; i++) s.received("collective");
  s.dropped("collective", "overloaded");
  s.routed("collective", 0.0005);
  s.routed("collective", 0.0005);
  s.published("federation", 2);
  s.adjustInFlight("collective", 1);
  s.connection("collective", false, "unknown", 700);
  s.slowConsumer("collective");
  return s;
}

function sample(text: string, name: string, labels: Record<string, string>): number {
  const line = text
    .split("\n")
    .find(
      (l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
    );
  if (line === undefined) throw new Error(`no ${name} ${JSON.stringify(labels)}`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("Prometheus exposition", () => {
  let text: string;
  beforeAll(async () => {
    const s = stats();
    text = await brokerMetrics(() => s.metricFamilies())();
  });

  it("uses go-choria's families, labels and stage names", () => {
    const ingest = { name: "nats_ingest", worker: "0", connected_to: "federation", cluster: "C1" };
    expect(sample(text, "choria_federation_received_msgs", ingest)).toBe(4);
    expect(sample(text, "choria_federation_received_msgs", { name: "choria_request_transformer" })).toBe(3);
    expect(
      sample(text, "choria_federation_received_msgs", { name: "nats_egest", connected_to: "collective" }),
    ).toBe(2);
    expect(sample(text, "choria_federation_published_msgs", { connected_to: "collective" })).toBe(5);
    expect(sample(text, "choria_federation_published_msgs", { connected_to: "federation" })).toBe(2);
    expect(sample(text, "choria_federation_errors", ingest)).toBe(1);
    expect(sample(text, "choria_federation_errors", { name: "choria_request_transformer" })).toBe(1);
    expect(sample(text, "choria_federation_errors", { name: "nats_egest", connected_to: "collective" })).toBe(
      1,
    );
    expect(
      sample(text, "choria_federation_errors", { name: "nats_ingest", connected_to: "collective" }),
    ).toBe(1);
    expect(sample(text, "choria_federation_received_msgs", { name: "choria_reply_transformer" })).toBe(2);
    expect(sample(text, "choria_federation_time_count", { name: "choria_request_transformer" })).toBe(2);
    expect(sample(text, "choria_federation_time_sum", { name: "choria_request_transformer" })).toBeCloseTo(
      0.004,
    );
    expect(
      sample(text, "choria_federation_time_sum", { name: "nats_egest", connected_to: "collective" }),
    ).toBeCloseTo(0.002);
    expect(text).toContain('identity="fb\\"1"');
  });

  it("adds refusals and drops by reason, in-flight, connection state and slow consumers", () => {
    expect(
      sample(text, "choria_edge_federation_refused_msgs", { side: "federation", reason: "malformed" }),
    ).toBe(1);
    expect(sample(text, "choria_edge_federation_refused_msgs", { side: "collective", reason: "loop" })).toBe(
      0,
    );
    expect(
      sample(text, "choria_edge_federation_dropped_msgs", { side: "collective", reason: "overloaded" }),
    ).toBe(1);
    expect(sample(text, "choria_edge_federation_replies_routed", {})).toBe(2);
    expect(sample(text, "choria_edge_federation_in_flight", { side: "collective" })).toBe(1);
    expect(sample(text, "choria_edge_federation_pending_bytes", { side: "collective" })).toBe(700);
    expect(sample(text, "choria_edge_federation_connected", { side: "federation" })).toBe(1);
    expect(sample(text, "choria_edge_federation_connected", { side: "collective" })).toBe(0);
    expect(sample(text, "choria_edge_federation_slow_consumer_events", { side: "collective" })).toBe(1);
  });

  it("is well-formed: every sample follows its own HELP and TYPE lines, each family once", () => {
    const lines = text.trimEnd().split("\n");
    const typed = new Map<string, string>();
    let current = "";
    for (const line of lines) {
      const type = /^# TYPE (\S+) (counter|gauge|summary)$/.exec(line);
      if (type) {
        expect(typed.has(type[1]!), `${type[1]} declared twice`).toBe(false);
        typed.set(type[1]!, type[2]!);
        current = type[1]!;
        continue;
      }
      // prom-client separates families with an empty line, which the format allows.
      if (line.startsWith("# HELP ") || line === "") continue;
      expect(line).toMatch(/^[a-z_]+\{([a-z_]+="([^"\\]|\\.)*",?)+\} -?[0-9.e-]+$/);
      const name = line.slice(0, line.indexOf("{"));
      expect([current, `${current}_sum`, `${current}_count`]).toContain(name);
    }
    expect(typed.get("choria_federation_time")).toBe("summary");
  });
});

describe("stats document", () => {
  it("reports both sides as the legacy broker did, plus refusals, drops and time per message", () => {
    const doc = stats().snapshot("OK");
    expect(doc).toMatchObject({
      protocol: "choria-edge:federation_stats:1",
      cluster: "C1",
      instance: "i1",
      start_time: 100,
      time: 200,
      status: "OK",
      federation: {
        source: "choria.federation.C1.federation",
        connected_server: "nats://fed:4222",
        received: 4,
        sent: 2,
        errors: 3,
        in_flight: 0,
        last_message: 200,
      },
      collective: { connected_server: "disconnected", received: 3, sent: 5, errors: 1, in_flight: 1 },
      refused: { malformed: 1, target_not_allowed: 1 },
      dropped: { publish_failed: 1, overloaded: 1 },
      replies_routed: 2,
    });
    expect(doc.time_per_message.request.count).toBe(2);
    expect(doc.time_per_message.request.seconds).toBeCloseTo(0.006);
  });
});
