import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runTrace } from "../../../cli/trace.ts";
import { type RunningBroker, startBroker } from "../../../functions/broker.ts";
import { brokerConfigFrom } from "../../../lib/federation/config.ts";
import type { TraceReport } from "../../../lib/federation/trace.ts";
import { generateFleet } from "../../../lib/node/fleet.ts";
import { NodeHost } from "../../../lib/node/responder.ts";
import { type NodeService, serveNodes } from "../../../lib/node/service.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";
import { bus } from "./support.ts";

describe("choria-edge trace", () => {
  let federation: NatsServer;
  let collective: NatsServer;
  let nodesBus: MessageBus;
  let nodes: NodeService;
  let broker: RunningBroker;
  let dir: string;
  let identity: string;
  let collectiveName: string;
  const out: string[] = [];

  beforeAll(async () => {
    const pki = await testPki();
    dir = await mkdtemp(join(tmpdir(), "choria-edge-trace-"));
    await writeFile(join(dir, "client.pem"), pki.client.certPem);
    await writeFile(join(dir, "client-key.pem"), pki.client.keyPem, { mode: 0o600 });
    [federation, collective] = await Promise.all([startNatsServer(), startNatsServer()]);
    const fleet = generateFleet({ count: 3, seed: 7 });
    identity = fleet[1]!.identity;
    collectiveName = fleet[1]!.collective;
    nodesBus = await bus(collective.url, "nodes");
    nodes = serveNodes(nodesBus, new NodeHost({ fleet, trust: TrustStore.fromPem(pki.caPem) }));
    await nodesBus.flush();
    const parsed = brokerConfigFrom({
      cluster: "T1",
      instance: "t1",
      identity: "broker-t1.example.net",
      collectives: [collectiveName],
      metricsListen: "off",
      federation: { servers: [federation.url] },
      collective: { servers: [collective.url] },
    });
    if (!parsed.ok) throw new Error(parsed.error);
    broker = await startBroker(parsed.config, { log: () => {} });
  }, 30_000);

  afterAll(async () => {
    await broker?.stop();
    await nodes?.stop();
    await nodesBus?.close();
    await Promise.allSettled([federation?.dispose(), collective?.dispose()]);
    await rm(dir, { recursive: true, force: true });
  });

  const args = (...extra: string[]) => [
    "--cluster",
    "T1",
    "--server",
    federation.url,
    "--cert",
    join(dir, "client.pem"),
    "--key",
    join(dir, "client-key.pem"),
    ...extra,
  ];

  it("prints the route hop by hop: client, broker, node, broker", async () => {
    out.length = 0;
    const code = await runTrace([identity, "--collective", collectiveName, ...args()], {
      write: (t: string) => out.push(t),
    });
    expect(code).toBe(0);
    const text = out.join("");
    const hopLines = text.split("\n").filter((l) => /^\s+\d+\. /.test(l));
    expect(hopLines).toHaveLength(4);
    expect(hopLines[0]).toMatch(
      new RegExp(`1\\. client\\s+${federation.url} → rip\\.mcollective → ${federation.url}`),
    );
    expect(hopLines[1]).toContain(
      `2. broker (request)  ${federation.url} → broker-t1.example.net (choria_nats_ingest:0, choria_request_transformer:0, choria_nats_egest:0) → ${collective.url}`,
    );
    expect(hopLines[2]).toMatch(
      new RegExp(`3\\. node\\s+${collective.url} → ${identity.replaceAll(".", "\\.")} → ${collective.url}`),
    );
    expect(hopLines[3]).toContain(`4. broker (reply)    ${collective.url} → broker-t1.example.net (`);
    expect(text).toMatch(/round trip \d+\.\d ms, 4 hops; reply: OK \(statuscode 0\)/);
  });

  it("prints JSON on request", async () => {
    out.length = 0;
    expect(
      await runTrace([identity, "--collective", collectiveName, "--json", ...args()], {
        write: (t: string) => out.push(t),
      }),
    ).toBe(0);
    const report = JSON.parse(out.join("")) as TraceReport;
    expect(report.hops.map((h) => h.role)).toEqual(["client", "broker (request)", "node", "broker (reply)"]);
    expect(report.identity).toBe(identity);
  });

  it("exits 1 when nobody answers, and 2 on bad usage", async () => {
    expect(
      await runTrace(["nobody.example.net", "--collective", collectiveName, "--timeout", "300", ...args()], {
        write: () => {},
      }),
    ).toBe(1);
    expect(await runTrace([], { write: () => {} })).toBe(2);
    expect(await runTrace(["a", "b"], { write: () => {} })).toBe(2);
    expect(await runTrace(["x", "--cert", join(dir, "missing.pem")], { write: () => {} })).toBe(2);
  });
});
