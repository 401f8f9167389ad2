import { hostname } from "node:os";
import { packageVersion } from "../lib/config/mod.ts";
import {
  type BrokerConfig,
  type BrokerSide,
  brokerUsage,
  FederationBroker,
  metricsAddress,
  parseBrokerConfig,
} from "../lib/federation/mod.ts";
import { errorText, jsonLineLogger, type Logger } from "../lib/log/mod.ts";
import type { NatsBus } from "../lib/transport/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
import { brokerMetrics, METRICS_CONTENT_TYPE } from "./broker-metrics.ts";
import { listenProbes, type ProbeListener } from "./metrics-http.ts";

export const BROKER_VERSION = `choria-edge-broker ${packageVersion()}`;

export interface RunningBroker {
  readonly broker: FederationBroker;
  readonly federation: NatsBus;
  readonly collective: NatsBus;
  /** Base URL of the /metrics, /healthz and /readyz listener, when one is configured. */
  readonly httpUrl: string | undefined;
  /** Graceful stop: no new work, finish what is in flight, drain both connections, close the listener. */
  stop(): Promise<void>;
}

export interface StartBrokerOptions {
  log?: Logger;
  /** Aborting gives up waiting for the NATS servers during start-up. */
  signal?: AbortSignal;
}

/**
 * Starts one broker instance in this process: health listener first (so /healthz answers while NATS is
 * still being reached), then both NATS connections, then the subscriptions.
 */
export async function startBroker(
  config: BrokerConfig,
  options: StartBrokerOptions = {},
): Promise<RunningBroker> {
  const log =
    options.log ??
    jsonLineLogger((line) => process.stderr.write(line), {
      component: "broker",
      cluster: config.cluster,
      instance: config.instance,
    });
  let serving: Serving | undefined;
  const http = await listenHttp(config, () => serving, log);
  const connect = (side: BrokerSide) =>
    connectNats({
      servers: config[side].servers,
      name: `fedbroker_${config.cluster}_${config.instance}_${side}`,
      auth: config[side].auth,
      ...(config[side].tls ? { tls: config[side].tls } : {}),
      timeoutMs: config.connectTimeoutMs,
      waitForServer: true,
      log: (level, msg, fields) => log(level, msg, { side, ...fields }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  let federation: NatsBus | undefined;
  let collective: NatsBus | undefined;
  try {
    [federation, collective] = await Promise.all([connect("federation"), connect("collective")]);
  } catch (err) {
    await Promise.allSettled([federation?.close(), collective?.close()]);
    await http?.close();
    throw err;
  }
  const running = new FederationBroker({ config, federation, collective, log, version: BROKER_VERSION });
  running.start();
  serving = { broker: running, metrics: brokerMetrics(() => running.metricFamilies()) };
  const buses = [federation, collective] as const;
  let stopping: Promise<void> | undefined;
  return {
    broker: running,
    federation,
    collective,
    httpUrl: http?.url,
    stop() {
      stopping ??= (async () => {
        await running.stop();
        await Promise.allSettled(buses.map((bus) => bus.drain()));
        await http?.close();
      })();
      return stopping;
    },
  };
}

/** `choria-edge broker [options]`: runs until SIGTERM or SIGINT, then stops gracefully and exits 0. */
export async function runBroker(argv: string[]): Promise<number> {
  const parsed = parseBrokerConfig(argv, process.env, { hostname: hostname(), pid: process.pid });
  if (!parsed.ok) {
    if ("help" in parsed) {
      process.stdout.write(`${brokerUsage()}\n`);
      return 0;
    }
    process.stderr.write(`choria-edge broker: ${parsed.error}\n\n${brokerUsage()}\n`);
    return 2;
  }
  const { config } = parsed;
  const log = jsonLineLogger((line) => process.stderr.write(line), {
    component: "broker",
    cluster: config.cluster,
    instance: config.instance,
  });
  const abort = new AbortController();
  let signals = 0;
  const stopRequested = new Promise<string>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      // A second signal means the operator does not want to wait for the graceful stop.
      if (signals > 1) process.exit(1);
      abort.abort(new Error(`stopped by ${signal}`));
      resolve(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });

  let running: RunningBroker;
  try {
    running = await startBroker(config, { log, signal: abort.signal });
  } catch (err) {
    if (abort.signal.aborted) {
      log("info", "stopped before connecting", { reason: String(abort.signal.reason) });
      return 0;
    }
    log("error", "broker failed to start", { error: errorText(err) });
    return 1;
  }
  const signal = await stopRequested;
  log("info", "signal received, stopping", { signal });
  await running.stop();
  return 0;
}

interface Serving {
  broker: FederationBroker;
  /** The /metrics body. */
  metrics: () => Promise<string>;
}

function listenHttp(
  config: BrokerConfig,
  serving: () => Serving | undefined,
  log: Logger,
): Promise<ProbeListener | undefined> {
  const address = metricsAddress(config);
  if (address === undefined) return Promise.resolve(undefined);
  return listenProbes(
    address,
    {
      metrics: () => serving()?.metrics(),
      metricsContentType: METRICS_CONTENT_TYPE,
      // Alive as long as this process answers and has not finished stopping.
      healthy: () => serving()?.broker.isStopped() !== true,
      ready: () => serving()?.broker.isReady() === true,
      extra: { "/stats": () => serving()?.broker.statsDocument() },
    },
    log,
  );
}
