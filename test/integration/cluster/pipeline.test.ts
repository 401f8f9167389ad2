// The whole pipeline on the production-shaped topology: the gateway, two brokers of cluster dc1, the
// collector and simulated member nodes, each connected as its own least-privileged role over TLS to
// three-server clusters (every process on a server list, not one server). A sync request is answered by
// every node; an async job lands in the jobs bucket, which the collector and gateway made with three
// replicas and said so in their logs. A client with a certificate from another CA is turned away.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { nkeyAuthenticator } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCertificateAuthority, issueCertificate } from "../../../infra/pki.ts";
import { streamReplication } from "../../../lib/transport/kv-bucket.ts";
import { logged, type Pipeline, settledAsyncPing, startPipeline } from "./pipeline.ts";
import { clusterLog, eventually, rawConnection } from "./support.ts";

const NODES = 20;
let pipeline: Pipeline;

beforeAll(async () => {
  pipeline = await startPipeline({ nodes: NODES });
}, 60_000);

afterAll(async () => {
  await pipeline?.stop();
});

describe("the pipeline on three-server clusters over TLS", () => {
  it("answers a sync request from every node through two brokers", async () => {
    const response = await pipeline.post({ agent: "rpcutil", action: "ping" });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as {
      summary: { discovered: number; ok: number };
      replies: { identity: string }[];
    };
    expect(answer.summary).toMatchObject({ discovered: NODES, ok: NODES });
    expect(answer.replies.map((r) => r.identity).sort()).toEqual(pipeline.identities);
  });

  it("stores an async job in the R3 jobs bucket, and both processes log the replication they got", async () => {
    const { answer: job } = await settledAsyncPing(pipeline, 15_000);
    expect(job.job.state).toBe("complete");
    expect(job.job.counts).toMatchObject({ ok: NODES, failed: 0, no_reply: 0 });
    const { topology } = pipeline.topo;

    // Asked of the servers as the collector, whose permissions cover these streams.
    const nc = await rawConnection(topology, topology.roles.collector, topology.federation.urls, "check");
    try {
      const jsm = await jetstreamManager(nc);
      for (const stream of [`KV_${topology.buckets.jobs}`, "CHORIA_EDGE_REPLIES"]) {
        const replication = await streamReplication(jsm, stream);
        expect(replication.replicas, stream).toBe(3);
        expect(replication.leader, stream).toMatch(/^fed-[123]$/);
      }
    } finally {
      await nc.close();
    }
    expect(logged(pipeline.collectorLog, "reply stream ready")).toEqual([
      expect.objectContaining({ stream: "CHORIA_EDGE_REPLIES", replicas: 3, replicas_requested: 3 }),
    ]);
    expect(logged(pipeline.gatewayLog, "kv bucket opened")).toContainEqual(
      expect.objectContaining({ bucket: topology.buckets.jobs, replicas: 3, replicas_requested: 3 }),
    );
  });

  it("turns away a client whose certificate comes from another CA, before any NATS protocol", async () => {
    const { topology } = pipeline.topo;
    const dir = await mkdtemp(join(tmpdir(), "choria-edge-stranger-"));
    try {
      const stranger = await createCertificateAuthority("somebody else's CA");
      const cert = await issueCertificate(stranger, "gateway.nats.choria-edge");
      await writeFile(join(dir, "cert.pem"), cert.certPem);
      await writeFile(join(dir, "key.pem"), cert.keyPem);
      const url = topology.federation.urls[0]!;
      await expect(
        connect({
          servers: [url],
          timeout: 3000,
          reconnect: false,
          // Trusts the right CA and even holds the gateway's nkey: only the certificate is wrong.
          tls: {
            caFile: topology.caFile,
            certFile: join(dir, "cert.pem"),
            keyFile: join(dir, "key.pem"),
          },
          authenticator: nkeyAuthenticator(new TextEncoder().encode(topology.roles.gateway.seed)),
        }),
      ).rejects.toThrow();
      await eventually("the server's log of the refused handshake", async () =>
        /TLS handshake error: .*(unknown authority|bad certificate)/.test(await clusterLog(topology, "fed")),
      );
      // And with no certificate at all.
      await expect(
        connect({ servers: [url], timeout: 3000, reconnect: false, tls: { caFile: topology.caFile } }),
      ).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
