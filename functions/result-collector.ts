import { hostname } from "node:os";
import { replyDigest } from "../lib/client/node.ts";
import { listenAddress } from "../lib/config/mod.ts";
import { DataStore } from "../lib/data/mod.ts";
import { errorText, jsonLineLogger, type Logger } from "../lib/log/mod.ts";
import {
  COLLECTOR_QUEUE,
  callbackSender,
  importSealKey,
  JOB_REPLY_WILDCARD,
  JobRecorder,
  JobStore,
  REPLY_STREAM,
} from "../lib/results/jobs/mod.ts";
import {
  type CollectorConfig,
  collectorUsage,
  httpCallbackSender,
  lambdaCallbackSender,
  parseCollectorConfig,
} from "../lib/results/jobs/node.ts";
import type { NatsBus } from "../lib/transport/mod.ts";
import { NatsKvBucket, queueReplySource, type ReplySource, streamReplySource } from "../lib/transport/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
import { applyJobEffects } from "../lib/triggers/mod.ts";
import { collectorMetrics } from "./collector-metrics.ts";
import { listenProbes, type ProbeListener } from "./metrics-http.ts";

export interface RunningCollector {
  readonly collector: JobRecorder;
  readonly store: JobStore;
  readonly bus: NatsBus;
  /** Base URL of the /metrics, /healthz and /readyz listener, when `metricsListen` asks for one. */
  readonly metricsUrl: string | undefined;
  /** Graceful stop: no new replies, finish those in hand, close the connection. */
  stop(): Promise<void>;
}

export interface StartCollectorOptions {
  log?: Logger;
  /** Aborting gives up waiting for NATS during start-up. */
  signal?: AbortSignal;
}

/**
 * Starts one collector instance in this process (on its own connection, so that a broker process can host
 * one beside its broker): the jobs bucket and the reply capture are created when missing.
 */
export async function startCollector(
  config: CollectorConfig,
  options: StartCollectorOptions = {},
): Promise<RunningCollector> {
  const log = options.log ?? jsonLineLogger((line) => process.stderr.write(line), { component: "collector" });
  const bus = await connectNats({
    servers: config.servers,
    name: config.name,
    auth: config.auth,
    ...(config.tls ? { tls: config.tls } : {}),
    ...(config.inboxPrefix ? { inboxPrefix: config.inboxPrefix } : {}),
    timeoutMs: config.connectTimeoutMs,
    waitForServer: true,
    log,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let probes: ProbeListener | undefined;
  try {
    const bucket = await NatsKvBucket.open(bus.connection, {
      name: config.bucket,
      ttlMs: config.retentionMs,
      replicas: config.replicas,
    });
    const store = new JobStore(bucket);
    const source: ReplySource =
      config.capture === "stream"
        ? await streamReplySource(bus.connection, {
            stream: REPLY_STREAM,
            subjects: [JOB_REPLY_WILDCARD],
            consumer: COLLECTOR_QUEUE,
            maxAgeMs: config.captureMaxAgeMs,
            replicas: config.replicas,
            log,
          })
        : queueReplySource(bus, { subject: JOB_REPLY_WILDCARD, queue: COLLECTOR_QUEUE, log });
    const sealKey =
      config.callbackSealKey === undefined ? undefined : await importSealKey(config.callbackSealKey);
    const callbacks = callbackSender({
      url: httpCallbackSender({
        ...(sealKey === undefined ? {} : { sealKey }),
        ...(config.callbackSecret === undefined ? {} : { secret: config.callbackSecret }),
        timeoutMs: config.callbackTimeoutMs,
        allowHttp: config.allowHttpCallbacks,
        allowPrivate: config.allowPrivateCallbacks,
      }),
      lambda: lambdaCallbackSender({
        ...(config.lambdaRegion === undefined ? {} : { region: config.lambdaRegion }),
        ...(config.lambdaEndpoint === undefined ? {} : { endpoint: config.lambdaEndpoint }),
      }),
    });
    // Opened on the first trigger run that ends: most collectors never see one.
    let data: Promise<DataStore> | undefined;
    const dataStore = () => {
      data ??= NatsKvBucket.open(bus.connection, {
        name: config.dataBucket,
        ttlMs: 0,
        replicas: config.replicas,
      }).then(
        (opened) => new DataStore(opened),
        (err: unknown) => {
          data = undefined;
          throw err;
        },
      );
      return data;
    };
    const collector = new JobRecorder({
      store,
      source,
      callbacks,
      applyEffects: async (record) => {
        if (record.effects !== null) await applyJobEffects(await dataStore(), record.effects, record.state);
      },
      retryPolicy: {
        baseDelayMs: config.callbackBackoffMs,
        maxDelayMs: 3_600_000,
        maxAttempts: config.callbackAttempts,
        jitter: 0.2,
        leaseMs: config.callbackTimeoutMs * 2,
      },
      sweepIntervalMs: config.sweepIntervalMs,
      replyDigest,
      log,
    });
    let stopping: Promise<void> | undefined;
    const address = listenAddress(config.metricsListen);
    const metrics = collectorMetrics(collector, () => bus.isConnected());
    probes =
      address === undefined
        ? undefined
        : await listenProbes(
            address,
            {
              metrics: () => metrics.render(),
              metricsContentType: metrics.contentType,
              healthy: () => stopping === undefined,
              ready: () => stopping === undefined && bus.isConnected(),
            },
            log,
          );
    await collector.start();
    log("info", "collector started", {
      bucket: config.bucket,
      capture: config.capture,
      subject: JOB_REPLY_WILDCARD,
      retention_ms: config.retentionMs,
    });
    return {
      collector,
      store,
      bus,
      metricsUrl: probes?.url,
      stop() {
        stopping ??= (async () => {
          await collector.stop();
          callbacks.close?.();
          await bus.drain().catch(() => {});
          await probes?.close();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await probes?.close();
    await bus.close();
    throw err;
  }
}

/** `choria-edge collector [options]`: runs until SIGTERM or SIGINT, then stops gracefully and exits 0. */
export async function runCollector(argv: string[]): Promise<number> {
  const parsed = parseCollectorConfig(argv, process.env, { hostname: hostname(), pid: process.pid });
  if (!parsed.ok) {
    if ("help" in parsed) {
      process.stdout.write(`${collectorUsage()}\n`);
      return 0;
    }
    process.stderr.write(`choria-edge collector: ${parsed.error}\n\n${collectorUsage()}\n`);
    return 2;
  }
  const log = jsonLineLogger((line) => process.stderr.write(line), { component: "collector" });
  const abort = new AbortController();
  let signals = 0;
  const stopRequested = new Promise<string>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      // A second signal means the operator does not want to wait for the graceful stop.
      if (++signals > 1) process.exit(1);
      abort.abort(new Error(`stopped by ${signal}`));
      resolve(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  let running: RunningCollector;
  try {
    running = await startCollector(parsed.config, { log, signal: abort.signal });
  } catch (err) {
    if (abort.signal.aborted) return 0;
    log("error", "collector failed to start", { error: errorText(err) });
    return 1;
  }
  log("info", "signal received, stopping", { signal: await stopRequested });
  await running.stop();
  return 0;
}
