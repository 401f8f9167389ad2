import { describe, expect, it } from "vitest";
import { promGatewayMetrics } from "../../../functions/gateway-metrics.ts";

function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

describe("the gateway's reply counter", () => {
  it("follows the connection's totals and goes on counting when a new connection starts again at zero", async () => {
    let totals: { routed: number; dropped: number } | undefined;
    const metrics = promGatewayMetrics(
      () => "connected",
      () => totals,
    );
    const routed = 'choria_edge_gateway_replies_total{outcome="routed"}';
    const dropped = 'choria_edge_gateway_replies_total{outcome="dropped"}';
    expect(value(await metrics.render(), routed)).toBe(0);
    totals = { routed: 5, dropped: 1 };
    expect(value(await metrics.render(), routed)).toBe(5);
    totals = { routed: 8, dropped: 1 };
    expect(value(await metrics.render(), routed)).toBe(8);
    // Connection gone: nothing to read, nothing lost.
    totals = undefined;
    expect(value(await metrics.render(), routed)).toBe(8);
    // A new connection, its own totals from zero.
    totals = { routed: 2, dropped: 0 };
    const text = await metrics.render();
    expect(value(text, routed)).toBe(10);
    expect(value(text, dropped)).toBe(1);
  });
});
