// `choria-edge gateway`: the gateway on Node with @hono/node-server, as the local stack runs it. One NATS
// connection (TCP) for the life of the process, made on the first request and reused by every one after.
import { writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { GatewayApp, GatewayAuth, NatsSource } from "../lib/gateway/mod.ts";
import { errorText, jsonLineLogger, type Logger } from "../lib/log/mod.ts";
import type { AuditEvent } from "../lib/security/http/mod.ts";
import { gatewaySettings, type NodeGatewaySettings } from "./gateway-env.ts";
import { promGatewayMetrics } from "./gateway-metrics.ts";
import { nodeGateway, type ReloadableSettings } from "./gateway-node.ts";
import { gatewayUsage } from "./gateway-options.ts";
import { listenProbes } from "./metrics-http.ts";

export interface RunningGateway {
  /** Base URL, `http://host:port`. */
  readonly url: string;
  /** The app new requests go to: another one after each reload. */
  readonly app: GatewayApp;
  readonly nats: NatsSource;
  /** Base URL of the /metrics, /healthz and /readyz listener, when `metricsListen` asks for one. */
  readonly metricsUrl: string | undefined;
  /**
   * Takes new keys and triggers: requests from now on go to an app built from them, requests in flight
   * finish on the one they started on. Bad files throw, and the gateway goes on as it was.
   */
  reload(files: ReloadableSettings): Promise<void>;
  /** Stops listening, lets requests in flight finish, then closes the NATS connection. */
  close(): Promise<void>;
}

export interface StartGatewayOptions {
  log?: Logger;
  audit?: (event: AuditEvent) => void;
  /** Replaces the authentication built from the keys document (a shared replay store, say). */
  auth?: GatewayAuth;
}

export async function startGateway(
  settings: NodeGatewaySettings,
  options: StartGatewayOptions = {},
): Promise<RunningGateway> {
  const log = options.log ?? jsonLineLogger((line) => process.stderr.write(line), { component: "gateway" });
  let source: NatsSource | undefined;
  const metrics =
    settings.metricsListen === undefined
      ? undefined
      : promGatewayMetrics(
          () => source?.status() ?? "not-connected",
          () => source?.replyStats?.(),
        );
  const gateway = await nodeGateway(settings, {
    log,
    connectionName: `choria-edge-gateway-${process.pid}`,
    ...(options.audit === undefined ? {} : { audit: options.audit }),
    ...(options.auth === undefined ? {} : { auth: options.auth }),
    ...(metrics === undefined ? {} : { metrics }),
  });
  const { nats, audit } = gateway;
  source = nats;
  let app = gateway.app;
  const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
    const started = serve(
      {
        // Looked up per request, so that a reload swaps the app between requests, never inside one.
        fetch: (request, env) => app.fetch(request, env),
        hostname: settings.listen.host,
        port: settings.listen.port,
      },
      () => resolve(started),
    );
    started.once("error", reject);
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`;
  let closing: Promise<void> | undefined;
  const probes =
    metrics === undefined || settings.metricsListen === undefined
      ? undefined
      : await listenProbes(
          settings.metricsListen,
          {
            metrics: () => metrics.render(),
            metricsContentType: metrics.contentType,
            healthy: () => closing === undefined,
            // The connection is made on the first request: only one being re-established makes the
            // gateway unable to answer (503) for now.
            ready: () => closing === undefined && nats.status() !== "reconnecting",
          },
          log,
        );
  log("info", "gateway listening", { url, clusters: Object.keys(settings.config.clusters) });
  return {
    url,
    get app() {
      return app;
    },
    nats,
    metricsUrl: probes?.url,
    async reload(files) {
      app = await gateway.rebuild(files);
    },
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await nats.close();
        await probes?.close();
        audit.close();
      })();
      return closing;
    },
  };
}

/**
 * SIGHUP reads the keys document and the trigger file again (the other settings stay as they started);
 * reloads run one at a time, and one that fails is logged and changes nothing.
 */
function reloadOnHangup(argv: string[], running: RunningGateway, log: Logger): () => void {
  let reloading = Promise.resolve();
  const reload = async () => {
    const parsed = await gatewaySettings(argv, process.env);
    if (!parsed.ok) throw new Error("error" in parsed ? parsed.error : "the settings ask for help");
    const { keysJson, triggers } = parsed.settings;
    await running.reload({ keysJson, ...(triggers === undefined ? {} : { triggers }) });
  };
  const onHangup = () => {
    reloading = reloading.then(() =>
      reload().then(
        () => log("info", "keys and triggers reloaded", { signal: "SIGHUP" }),
        (err: unknown) =>
          log("error", "reload refused, keeping the keys and triggers in use", {
            signal: "SIGHUP",
            error: errorText(err),
          }),
      ),
    );
  };
  process.on("SIGHUP", onHangup);
  return () => process.off("SIGHUP", onHangup);
}

/**
 * `choria-edge gateway [options]`: serves until SIGTERM or SIGINT, then stops and exits 0; SIGHUP reloads
 * the keys and triggers.
 */
export async function runGateway(argv: string[]): Promise<number> {
  const parsed = await gatewaySettings(argv, process.env);
  if (!parsed.ok) {
    if ("help" in parsed) {
      process.stdout.write(`${gatewayUsage()}\n`);
      return 0;
    }
    process.stderr.write(`choria-edge gateway: ${parsed.error}\n\n${gatewayUsage()}\n`);
    return 2;
  }
  const { settings } = parsed;
  const log = jsonLineLogger((line) => process.stderr.write(line), { component: "gateway" });
  let running: RunningGateway;
  try {
    running = await startGateway(settings, { log });
  } catch (err) {
    log("error", "gateway failed to start", { error: errorText(err) });
    return 1;
  }
  const stopReloading = reloadOnHangup(argv, running, log);
  if (settings.readyFile) await writeFile(settings.readyFile, `ready ${running.url}\n`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  log("info", "signal received, stopping", { signal });
  stopReloading();
  await running.close();
  return 0;
}
