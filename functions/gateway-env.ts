// Settings for the Node-hosted gateways (the `choria-edge gateway` command and the Lambda handler): every
// option is a flag and a CHORIA_EDGE_GATEWAY_* environment variable, flags winning, with defaults that
// suit the local stack. Certificate and key material may be given as files or, where there is no file
// system to speak of (Lambda), as PEM text.
import { join } from "node:path";
import {
  DEMO_PKI_MADE,
  LISTEN_PATTERN,
  listenAddress,
  pkiDir,
  readNamedFile,
  readOptions,
  stateDir,
} from "../lib/config/mod.ts";
import {
  type GatewayConfig,
  type GatewayConfigInput,
  gatewayConfigFrom,
  parseClusters,
  parseDialects,
} from "../lib/gateway/mod.ts";
import { type AuditTarget, parseAuditTarget } from "./audit-sink.ts";
import { type GatewayNatsSettings, gatewayNatsSettings } from "./gateway-nats.ts";
import { GATEWAY_ENV_PREFIX, GATEWAY_OPTIONS } from "./gateway-options.ts";

export interface NodeGatewaySettings extends GatewayNatsSettings {
  config: GatewayConfig;
  listen: { host: string; port: number };
  certPem: string;
  keyPem: string;
  /** The keys document as JSON text. */
  keysJson: string;
  /** Where replay claims live: this process's memory, or JetStream KV shared by every gateway instance. */
  replayStore?: "memory" | "kv";
  /** Async requests and /v1/jobs, stored in the collectors' KV bucket. */
  jobs?: boolean;
  /** The trigger file's text, and its name for error messages. */
  triggers?: { text: string; filename: string };
  dataBucket?: string;
  /** Where /metrics, /healthz and /readyz are served; none by default. */
  metricsListen?: { host: string; port: number };
  /** Where audit lines go (stdout by default). */
  audit?: AuditTarget;
  readyFile: string | undefined;
}

export type SettingsResult =
  | { ok: true; settings: NodeGatewaySettings }
  | { ok: false; error: string }
  | { ok: false; help: true };

export type Get = (flag: string) => string | undefined;
type Problem = { ok: false; error: string };

/** Reads flags and environment, then the certificate, key and keys files. Never throws. */
export async function gatewaySettings(
  argv: string[],
  env: Record<string, string | undefined>,
): Promise<SettingsResult> {
  const read = readOptions(GATEWAY_OPTIONS, GATEWAY_ENV_PREFIX, argv, env);
  if (!read.ok) return read;
  const get = read.str;
  const listen = /^(.*):(\d{1,5})$/.exec(get("listen") ?? "127.0.0.1:8080");
  if (!listen) return { ok: false, error: "--listen: expected host:port" };
  const metricsListen = get("metrics-listen") ?? "off";
  if (!LISTEN_PATTERN.test(metricsListen))
    return { ok: false, error: '--metrics-listen: expected "host:port" or "off"' };
  const metricsAddress = listenAddress(metricsListen);
  const audit = parseAuditTarget(get("audit") ?? "stdout");
  if (typeof audit === "object" && "error" in audit) return { ok: false, error: audit.error };
  const config = gatewayConfig(get);
  if (!config.ok) return config;
  const nats = gatewayNatsSettings(get, "node");
  if ("error" in nats) return { ok: false, error: nats.error };

  const replayStore = get("replay-store") ?? "memory";
  if (replayStore !== "memory" && replayStore !== "kv")
    return { ok: false, error: `--replay-store: memory or kv, not ${replayStore}` };
  const jobs = get("jobs") ?? "off";
  if (jobs !== "on" && jobs !== "off") return { ok: false, error: `--jobs: on or off, not ${jobs}` };

  try {
    const material = gatewayMaterial(get);
    const [certPem, keyPem, keysJson, triggersText] = await Promise.all([
      material.certPem,
      material.keyPem,
      material.keysJson,
      material.triggersText,
    ]);
    const files = { certPem, keyPem, keysJson, triggersText };
    const triggersFile = get("triggers");
    const dataBucket = get("data-bucket");
    return {
      ok: true,
      settings: {
        config: config.config,
        listen: { host: listen[1]!, port: Number(listen[2]) },
        ...nats,
        certPem: files.certPem,
        keyPem: files.keyPem,
        keysJson: files.keysJson,
        replayStore,
        jobs: jobs === "on",
        ...(files.triggersText === undefined
          ? {}
          : { triggers: { text: files.triggersText, filename: triggersFile ?? "triggers" } }),
        ...(dataBucket === undefined ? {} : { dataBucket }),
        ...(metricsAddress === undefined ? {} : { metricsListen: metricsAddress }),
        audit,
        readyFile: get("ready-file"),
      },
    };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

function gatewayConfig(get: Get): { ok: true; config: GatewayConfig } | Problem {
  const int = (flag: string): number | undefined => {
    const value = get(flag);
    return value === undefined ? undefined : Number(value);
  };
  let clusters: Record<string, string[]> | undefined;
  const clustersText = get("clusters");
  if (clustersText !== undefined) {
    const parsed = parseClusters(clustersText);
    if (!parsed.ok) return { ok: false, error: parsed.error };
    clusters = parsed.clusters;
  }
  const dialects = get("dialects");
  const config = gatewayConfigFrom({
    ...(clusters ? { clusters } : {}),
    ...(dialects ? { dialects: parseDialects(dialects) as GatewayConfigInput["dialects"] } : {}),
    identity: get("identity"),
    publicUrl: get("public-url"),
    maxBodyBytes: int("max-body-bytes"),
    maxHookBodyBytes: int("max-hook-body-bytes"),
    maxTimeoutMs: int("max-timeout"),
    discoveryIdleMs: int("discovery-idle"),
    connectTimeoutMs: int("connect-timeout"),
    syncBudgetMs: int("sync-budget"),
    callbackSealKey: get("callback-seal-key"),
  });
  return config.ok ? config : { ok: false, error: config.error };
}

const GATEWAY_NAME = "gateway.privileged.mcollective";

/**
 * Certificate, key, keys document and trigger file: given as text, else read from their files; each its
 * own promise, so that `choria-edge doctor` can tell every missing one.
 */
export function gatewayMaterial(get: Get): {
  certPem: Promise<string>;
  keyPem: Promise<string>;
  keysJson: Promise<string>;
  triggersText: Promise<string | undefined>;
} {
  const triggersFile = get("triggers");
  // A default file is the demo PKI's, which a command makes; a named one is the operator's to fix.
  const demo = (flag: string) =>
    get(flag) === undefined ? { made: DEMO_PKI_MADE, instead: `--${flag}` } : {};
  const text = (value: string | undefined) => (value === undefined ? undefined : Promise.resolve(value));
  return {
    certPem:
      text(get("cert-pem")) ??
      readNamedFile(get("cert") ?? join(pkiDir(), `${GATEWAY_NAME}.pem`), {
        what: "gateway certificate",
        ...demo("cert"),
      }),
    keyPem:
      text(get("key-pem")) ??
      readNamedFile(get("key") ?? join(pkiDir(), `${GATEWAY_NAME}-key.pem`), {
        what: "gateway key",
        ...demo("key"),
      }),
    keysJson:
      text(get("keys-json")) ??
      readNamedFile(get("keys") ?? join(stateDir(), "gateway-keys.json"), {
        what: "caller keys document",
        made: "npm start writes the demo one; 'choria-edge req --generate-key' prints entries to put in it",
        instead: "--keys",
      }),
    triggersText:
      text(get("triggers-text")) ??
      (triggersFile === undefined
        ? Promise.resolve(undefined)
        : readNamedFile(triggersFile, {
            what: "trigger file (--triggers)",
            made: "npm start writes a demo one",
          })),
  };
}
