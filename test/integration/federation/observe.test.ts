import { afterEach, describe, expect, it } from "vitest";
import { runObserve } from "../../../cli/observe.ts";
import { startBroker } from "../../../functions/broker.ts";
import { brokerConfigFrom } from "../../../lib/federation/config.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { bus, CLUSTER, COLLECTIVE, federatedRequest, publishRequest, requestId } from "./support.ts";

describe("choria-edge observe", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  async function cluster(): Promise<NatsServer> {
    const server = await startNatsServer();
    cleanup.push(() => server.dispose());
    for (const instance of ["o1", "o2"]) {
      const parsed = brokerConfigFrom({
        cluster: CLUSTER,
        instance,
        identity: `${instance}.example.net`,
        metricsListen: "off",
        statsIntervalMs: 150,
        federation: { servers: [server.url] },
        collective: { servers: [server.url] },
      });
      if (!parsed.ok) throw new Error(parsed.error);
      const running = await startBroker(parsed.config, { log: () => {} });
      cleanup.push(() => running.stop());
    }
    return server;
  }

  it("prints one JSON line per update with totals and every instance's share", async () => {
    const server = await cluster();
    const client = await bus(server.url, "client");
    cleanup.push(() => client.close());
    for (let i = 0; i < 20; i++) {
      publishRequest(
        client,
        federatedRequest(requestId(), [`${COLLECTIVE}.node.n1`, `${COLLECTIVE}.node.n2`]),
      );
    }
    await client.flush();
    await new Promise((r) => setTimeout(r, 400));

    const lines: string[] = [];
    const code = await runObserve(["--cluster", CLUSTER, "--server", server.url, "--json", "--count", "4"], {
      write: (text: string) => lines.push(text),
    });
    expect(code).toBe(0);
    expect(lines).toHaveLength(4);
    const last = JSON.parse(lines.at(-1)!);
    expect(last.cluster).toBe(CLUSTER);
    expect(last.instances.map((i: { instance: string }) => i.instance).sort()).toEqual(["o1", "o2"]);
    expect(last.totals.received).toBe(20);
    expect(last.totals.sent).toBe(40);
    const shares = last.instances.map((i: { receivedShare: number }) => i.receivedShare);
    expect(shares.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1);
  });

  it("prints the table when not asked for JSON", async () => {
    const server = await cluster();
    let text = "";
    const code = await runObserve(["--cluster", CLUSTER, "--server", server.url, "--count", "2"], {
      write: (chunk: string) => {
        text += chunk;
      },
    });
    expect(code).toBe(0);
    expect(text).toContain(`federation broker cluster ${CLUSTER}`);
    expect(text).toMatch(/^instance\s+status\s+received/m);
    expect(text).toMatch(/^total\s+\d up/m);
  });

  it("refuses bad options", async () => {
    expect(await runObserve(["--count", "0"], { write: () => {} })).toBe(2);
    expect(await runObserve(["--bogus"], { write: () => {} })).toBe(2);
    let help = "";
    expect(await runObserve(["--help"], { write: (t: string) => (help += t) })).toBe(0);
    expect(help).toContain("usage: choria-edge observe");
  });
});
