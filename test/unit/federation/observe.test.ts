import { describe, expect, it } from "vitest";
import { ClusterView, parseStatsDocument, renderClusterSnapshot } from "../../../lib/federation/observe.ts";
import { FederationStats, type StatsDocument } from "../../../lib/federation/stats.ts";

function doc(
  instance: string,
  requests: number,
  copies: number,
  replies: number,
  cluster = "C1",
): StatsDocument {
  const s = new FederationStats({
    cluster,
    instance,
    identity: `${instance}.example.net`,
    version: "t",
    startTime: 0,
  });
  for (let i = 0; i < requests; i++) s.received("federation");
  s.published("collective", copies);
  for (let i = 0; i < replies; i++) s.received("collective");
  s.published("federation", replies);
  s.refused("federation", "bad_target");
  return s.snapshot("OK");
}

describe("ClusterView", () => {
  it("gives totals and each instance's share of what was received and sent", () => {
    const view = new ClusterView("C1", 10_000);
    view.update(doc("b1", 30, 30, 90), 0);
    view.update(doc("b2", 10, 10, 70), 0);
    const snap = view.snapshot(100);
    expect(snap.totals).toMatchObject({ received: 200, sent: 200, errors: 2 });
    const [b1, b2] = snap.instances;
    expect(b1).toMatchObject({
      instance: "b1",
      received: 120,
      sent: 120,
      receivedShare: 0.6,
      sentShare: 0.6,
    });
    expect(b2).toMatchObject({
      instance: "b2",
      received: 80,
      receivedShare: 0.4,
      refused: { bad_target: 1 },
    });
  });

  it("derives rates from consecutive documents and restarts them after an instance restarts", () => {
    const view = new ClusterView("C1", 10_000);
    view.update(doc("b1", 10, 10, 0), 0);
    expect(view.snapshot(0).instances[0]!.receivedRate).toBe(0);
    view.update(doc("b1", 30, 40, 0), 2000);
    expect(view.snapshot(2000).instances[0]).toMatchObject({ receivedRate: 10, sentRate: 15 });
    view.update(doc("b1", 1, 1, 0), 4000);
    expect(view.snapshot(4000).instances[0]!.receivedRate).toBe(0);
  });

  it("forgets silent instances and ignores other clusters", () => {
    const view = new ClusterView("C1", 5000);
    view.update(doc("b1", 1, 1, 0), 0);
    expect(view.update(doc("x", 1, 1, 0, "C2"), 0)).toBe(false);
    view.update(doc("b2", 1, 1, 0), 4000);
    expect(view.snapshot(6000).instances.map((i) => i.instance)).toEqual(["b2"]);
  });

  it("renders a table with a row per instance and a total", () => {
    const view = new ClusterView("C1", 10_000);
    view.update(doc("b1", 3, 3, 0), 0);
    view.update(doc("b2", 1, 1, 0), 0);
    const text = renderClusterSnapshot(view.snapshot(0), new Date(0));
    const lines = text.split("\n");
    expect(lines[0]).toBe("federation broker cluster C1 at 1970-01-01T00:00:00.000Z");
    expect(lines[2]).toMatch(
      /^instance\s+status\s+received\s+share\s+rate\s+sent\s+share\s+rate\s+in flight\s+errors$/,
    );
    expect(lines[3]).toMatch(/^b1\s+OK\s+3\s+75\.0%/);
    expect(lines[4]).toMatch(/^b2\s+OK\s+1\s+25\.0%/);
    expect(lines[5]).toMatch(/^total\s+2 up\s+4\s/);
    expect(text).toContain("refused: bad_target 2");
  });
});

describe("parseStatsDocument", () => {
  it("accepts what a broker publishes and nothing else", () => {
    const d = doc("b1", 1, 1, 1);
    expect(parseStatsDocument(JSON.stringify(d))).toEqual(d);
    expect(parseStatsDocument("{")).toBeUndefined();
    expect(parseStatsDocument(JSON.stringify({ ...d, protocol: "other" }))).toBeUndefined();
    expect(parseStatsDocument(JSON.stringify({ ...d, federation: { received: "many" } }))).toBeUndefined();
  });
});
