// The small HTTP listener each Node process keeps beside its real work: /metrics for Prometheus,
// /healthz (alive) and /readyz (able to do its work), on an address of its own so that scraping never
// shares the public port. The broker, the gateway and the collector all serve theirs through this.
import { createServer, type Server } from "node:http";
import type { Logger } from "../lib/log/mod.ts";

export interface Probes {
  /** The /metrics body; undefined while the process is still starting. */
  metrics(): Promise<string> | undefined;
  metricsContentType: string;
  healthy(): boolean;
  ready(): boolean;
  /** Further GET paths and their JSON documents (the broker's /stats); undefined while starting. */
  extra?: Record<string, () => unknown>;
}

export interface ProbeListener {
  readonly server: Server;
  /** `http://host:port`, with the port the system chose when asked for 0. */
  readonly url: string;
  close(): Promise<void>;
}

export async function listenProbes(
  address: { host: string; port: number },
  probes: Probes,
  log: Logger,
): Promise<ProbeListener> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "method not allowed\n");
    const extra = probes.extra?.[path];
    if (extra !== undefined) {
      const doc = extra();
      return doc === undefined
        ? send(503, "text/plain", "starting\n")
        : send(200, "application/json", JSON.stringify(doc));
    }
    switch (path) {
      case "/metrics": {
        const metrics = probes.metrics();
        if (metrics === undefined) return send(503, "text/plain", "starting\n");
        return void metrics.then(
          (body) => send(200, probes.metricsContentType, body),
          (err: unknown) => send(500, "text/plain", `${String(err)}\n`),
        );
      }
      case "/healthz":
        return probes.healthy() ? send(200, "text/plain", "ok\n") : send(503, "text/plain", "stopped\n");
      case "/readyz":
        return probes.ready() ? send(200, "text/plain", "ready\n") : send(503, "text/plain", "not ready\n");
      default:
        return send(404, "text/plain", "not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(address.port, address.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const port = typeof bound === "object" && bound ? bound.port : address.port;
  const url = `http://${address.host.includes(":") ? `[${address.host}]` : address.host}:${port}`;
  log("info", "http listening", {
    url,
    paths: ["/metrics", "/healthz", "/readyz", ...Object.keys(probes.extra ?? {})],
  });
  return {
    server,
    url,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
