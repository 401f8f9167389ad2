// `choria-edge doctor` once its arguments are read: every check of the gateway configuration, and the
// report.
import { existsSync, readFileSync } from "node:fs";
import { type Get, gatewayMaterial } from "../functions/gateway-env.ts";
import { type GatewayRuntime, gatewayNatsSettings, gatewayOptionName } from "../functions/gateway-nats.ts";
import { GATEWAY_ENV_PREFIX } from "../functions/gateway-options.ts";
import { DEFAULT_DATA_BUCKET } from "../lib/data/mod.ts";
import { errorText } from "../lib/log/mod.ts";
import { DEFAULT_BUCKET } from "../lib/results/jobs/mod.ts";
import { KeyConfigError, KeyRegistry } from "../lib/security/http/mod.ts";
import { loadSigner } from "../lib/security/mod.ts";
import { parseCertificate, validityAt } from "../lib/security/node.ts";
import { connectWebSocket, kvBucketState, type MessageBus, NatsBus } from "../lib/transport/mod.ts";
import { connectNats } from "../lib/transport/node.ts";
import { parseTriggerJson } from "../lib/triggers/mod.ts";
import { parseTriggerFile } from "../lib/triggers/node.ts";
import type { DoctorArgs, DoctorIo } from "./doctor.ts";

export type CheckStatus = "ok" | "warn" | "fail";
export interface CheckResult {
  check: string;
  status: CheckStatus;
  detail: string;
}

/** What the runtime would read: its options, and the certificate, key, keys and trigger texts. */
interface Configuration {
  runtime: GatewayRuntime;
  get: Get;
  material: ReturnType<typeof gatewayMaterial>;
  wrangler?: WranglerConfig;
}

/** Checks the configuration for this runtime and reports: exit 0, or 1 when a check fails. */
export async function checkGateway(
  read: DoctorArgs,
  runtime: GatewayRuntime,
  timeoutMs: number,
  io: DoctorIo,
  env: Record<string, string | undefined>,
): Promise<number> {
  const config =
    runtime === "workers"
      ? workersConfiguration(read.str, env)
      : { runtime, get: read.str, material: gatewayMaterial(read.str) };
  const results = await doctor(config, timeoutMs);
  io.stdout.write(
    read.values.json
      ? `${JSON.stringify({ target: runtime, ok: results.every((r) => r.status !== "fail"), checks: results }, null, 2)}\n`
      : `${results.map((r) => `${r.status.padEnd(4)}  ${r.check.padEnd(11)} ${r.detail}`).join("\n")}\n`,
  );
  return results.some((r) => r.status === "fail") ? 1 : 0;
}

/** Every check, in the order an operator fixes things. */
export async function doctor(
  config: Configuration | { error: string },
  timeoutMs: number,
): Promise<CheckResult[]> {
  if ("error" in config) return [{ check: "config", status: "fail", detail: config.error }];
  const results: CheckResult[] = [];
  if (config.wrangler) results.push(...wranglerChecks(config));
  results.push(await certificateCheck(config));
  results.push(...(await keysChecks(config)));
  results.push(await triggersCheck(config));
  results.push(...(await natsChecks(config, timeoutMs)));
  return results;
}

const ok = (check: string, detail: string): CheckResult => ({ check, status: "ok", detail });
const warn = (check: string, detail: string): CheckResult => ({ check, status: "warn", detail });
const fail = (check: string, detail: string): CheckResult => ({ check, status: "fail", detail });

const RENEW_WITHIN_MS = 30 * 86_400_000;

async function certificateCheck({ material }: Configuration): Promise<CheckResult> {
  let certPem: string;
  let keyPem: string;
  try {
    [certPem, keyPem] = await Promise.all([material.certPem, material.keyPem]);
  } catch (err) {
    return fail("certificate", errorText(err));
  }
  const parsed = parseCertificate(certPem);
  if (!parsed.ok)
    return fail("certificate", `${parsed.detail}; give the PEM certificate the Choria CA issued`);
  try {
    await loadSigner({ certPem, keyPem });
  } catch (err) {
    return fail("certificate", `${errorText(err)}; give the key the certificate was issued for`);
  }
  const { notAfter } = parsed.value;
  const name = parsed.value.names[0] ?? "?";
  const now = new Date();
  switch (validityAt(parsed.value, now)) {
    case "expired":
      return fail("certificate", `${name} expired on ${notAfter.toISOString()}; issue a new one`);
    case "not_yet_valid":
      return fail(
        "certificate",
        `${name} is not valid before ${parsed.value.notBefore.toISOString()}; check the clock`,
      );
    case "valid":
      return notAfter.getTime() - now.getTime() < RENEW_WITHIN_MS
        ? warn("certificate", `${name} expires on ${notAfter.toISOString()}; renew it soon`)
        : ok("certificate", `${name}, key matches, valid until ${notAfter.toISOString()}`);
  }
}

/** The keys document parses, and every key has a caller id (given, or derived from its id). */
async function keysChecks({ material }: Configuration): Promise<CheckResult[]> {
  const unchecked = warn("callerid", "not checked: no keys document");
  let text: string;
  try {
    text = await material.keysJson;
  } catch (err) {
    return [fail("keys", errorText(err)), unchecked];
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    return [fail("keys", `${errorText(err)}; fix the JSON`), unchecked];
  }
  try {
    const registry = await KeyRegistry.fromConfig(config);
    const callers = registry.all().map((k) => k.callerId);
    return [
      ok("keys", `${callers.length} caller key${callers.length === 1 ? "" : "s"}`),
      ok("callerid", [...new Set(callers)].join(", ") || "no keys"),
    ];
  } catch (err) {
    if (!(err instanceof KeyConfigError))
      return [fail("keys", errorText(err)), warn("callerid", "not checked")];
    const callerIssues = err.issues.filter((i) => i.includes("set callerId"));
    const others = err.issues.filter((i) => !callerIssues.includes(i));
    return [
      others.length === 0 ? ok("keys", "parses") : fail("keys", `${others.join("; ")}; fix these entries`),
      callerIssues.length === 0
        ? ok("callerid", "every key has one")
        : fail("callerid", `${callerIssues.join("; ")} (a caller id is <prefix>=<name>, e.g. "up=ops")`),
    ];
  }
}

async function triggersCheck({ material, runtime }: Configuration): Promise<CheckResult> {
  let text: string | undefined;
  try {
    text = await material.triggersText;
  } catch (err) {
    return fail("triggers", errorText(err));
  }
  if (text === undefined) return ok("triggers", "none configured");
  // A Worker reads JSON only: what `choria-edge hook compile` makes of a YAML file.
  const parse = runtime === "workers" ? parseTriggerJson : parseTriggerFile;
  const parsed = parse(text, { filename: "triggers" });
  if (parsed.ok) return ok("triggers", `${parsed.triggers.all().length} trigger(s)`);
  const fix =
    runtime === "workers" ? "give the JSON that 'choria-edge hook compile' prints" : "fix the trigger file";
  return fail("triggers", `${parsed.message}; ${fix}`);
}

/** Connects with the runtime's own settings, flushes one round trip, then looks for the buckets. */
async function natsChecks(config: Configuration, timeoutMs: number): Promise<CheckResult[]> {
  const settings = gatewayNatsSettings(config.get, config.runtime);
  if ("error" in settings)
    return [fail("nats", settings.error), warn("buckets", "not checked: no NATS connection")];
  if (config.runtime === "workers" && typeof (globalThis as { WebSocket?: unknown }).WebSocket !== "function")
    return [
      warn(
        "nats",
        "this Node has no WebSocket to try the servers with; run doctor on Node 22 or later, or with NODE_OPTIONS=--experimental-websocket",
      ),
      warn("buckets", "not checked: no NATS connection"),
    ];
  let bus: MessageBus;
  try {
    bus = await connectWithin(config.runtime, settings, timeoutMs);
    await withTimeout(bus.flush(), timeoutMs, "no answer to a flush");
  } catch (err) {
    return [
      fail(
        "nats",
        `${settings.natsServers.join(",")}: ${errorText(err)}; check the URL, credentials and TLS files`,
      ),
      warn("buckets", "not checked: no NATS connection"),
    ];
  }
  try {
    return [
      ok("nats", `connected to ${settings.natsServers.join(",")} and flushed`),
      await bucketsCheck(config, bus),
    ];
  } finally {
    await bus.close();
  }
}

function connectWithin(
  runtime: GatewayRuntime,
  settings: Exclude<ReturnType<typeof gatewayNatsSettings>, { error: string }>,
  timeoutMs: number,
): Promise<MessageBus> {
  const common = {
    servers: settings.natsServers,
    name: "choria-edge-doctor",
    auth: settings.natsAuth,
    timeoutMs,
    ...(settings.natsInboxPrefix ? { inboxPrefix: settings.natsInboxPrefix } : {}),
  };
  return runtime === "workers"
    ? connectWebSocket(common)
    : withTimeout(
        connectNats({ ...common, ...(settings.natsTls ? { tls: settings.natsTls } : {}) }),
        timeoutMs,
        "no connection",
      );
}

async function bucketsCheck({ get }: Configuration, bus: MessageBus): Promise<CheckResult> {
  const wanted: [string, string][] = [];
  if (get("jobs") === "on") wanted.push(["jobs", DEFAULT_BUCKET]);
  if (get("replay-store") === "kv") wanted.push(["replay", "choria_edge_replay"]);
  if (get("triggers") !== undefined || get("triggers-text") !== undefined)
    wanted.push(["data", get("data-bucket") ?? DEFAULT_DATA_BUCKET]);
  if (wanted.length === 0) return ok("buckets", "none used (jobs off, replay store in memory, no triggers)");
  if (!(bus instanceof NatsBus)) return warn("buckets", "not checked");
  const found: string[] = [];
  for (const [what, name] of wanted) {
    try {
      const state = await kvBucketState(bus.connection, name);
      found.push(`${what} ${name} ${state === "exists" ? "exists" : "missing, made on first use"}`);
    } catch (err) {
      return fail(
        "buckets",
        `${what} bucket ${name}: ${errorText(err)}; enable JetStream on the federation servers and allow this user $JS.API for the bucket`,
      );
    }
  }
  return ok("buckets", found.join("; "));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The parts of wrangler.toml the gateway depends on. */
interface WranglerConfig {
  path: string;
  main: string | undefined;
  vars: Record<string, string>;
  durableObjects: { name: string; className: string }[];
}

/**
 * Reads the flat subset of TOML a wrangler.toml for this gateway uses: `key = "string"` lines, [vars] and
 * [[durable_objects.bindings]]; other tables are skipped.
 */
export function readWranglerToml(path: string, text: string): WranglerConfig {
  const config: WranglerConfig = { path, main: undefined, vars: {}, durableObjects: [] };
  let table = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const header = /^\[\[?([^\]]+)\]\]?$/.exec(line);
    if (header) {
      table = header[1]?.trim() ?? "";
      if (table === "durable_objects.bindings") config.durableObjects.push({ name: "", className: "" });
      continue;
    }
    const pair = /^([A-Za-z0-9_-]+)\s*=\s*"((?:[^"\\]|\\.)*)"/.exec(line);
    if (!pair) continue;
    const [, key = "", value = ""] = pair;
    const binding = config.durableObjects.at(-1);
    if (table === "" && key === "main") config.main = value;
    else if (table === "vars") config.vars[key] = value;
    else if (table === "durable_objects.bindings" && binding) {
      if (key === "name") binding.name = value;
      if (key === "class_name") binding.className = value;
    }
  }
  return config;
}

/**
 * `KEY=value` lines (wrangler's .dev.vars, `--env-file`) as dotenv reads them: a double-quoted value may
 * span lines (a PEM) and has its `\\n` escapes expanded, a single-quoted one is taken as it is.
 */
export function readEnvFile(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  const line = /^[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\n]*))/gm;
  for (const [, key = "", double, single, bare] of text.matchAll(line))
    vars[key] =
      double !== undefined
        ? double.replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1")
        : (single ?? bare?.trim() ?? "");
  return vars;
}

/** What the Worker sees: [vars], overridden by secrets (the env file), overridden by the environment. */
function workersConfiguration(
  str: Get,
  env: Record<string, string | undefined>,
): Configuration | { error: string } {
  const path = str("wrangler-config") ?? "wrangler.toml";
  let wrangler: WranglerConfig;
  let secrets: Record<string, string> = {};
  try {
    wrangler = readWranglerToml(path, readFileSync(path, "utf8"));
    const envFile = str("env-file") ?? (existsSync(".dev.vars") ? ".dev.vars" : undefined);
    if (envFile !== undefined) secrets = readEnvFile(readFileSync(envFile, "utf8"));
  } catch (err) {
    return { error: `${errorText(err)}; run doctor where wrangler.toml is, or give --wrangler-config` };
  }
  const fromEnv = Object.fromEntries(
    Object.entries(env).filter(([name]) => name.startsWith(GATEWAY_ENV_PREFIX)),
  ) as Record<string, string>;
  const vars = { ...wrangler.vars, ...secrets, ...fromEnv };
  const variable = (flag: string) => gatewayOptionName(flag, "workers");
  const get: Get = (flag) => vars[variable(flag)] || undefined;
  const secret = (flag: string, file: string) => {
    const value = get(flag);
    return value === undefined
      ? Promise.reject(
          new Error(`${variable(flag)} is not set: wrangler secret put ${variable(flag)} < ${file}`),
        )
      : Promise.resolve(value);
  };
  return {
    runtime: "workers",
    get,
    wrangler,
    material: {
      certPem: secret("cert-pem", "gateway.pem"),
      keyPem: secret("key-pem", "gateway-key.pem"),
      keysJson: secret("keys-json", "gateway-keys.json"),
      triggersText: Promise.resolve(get("triggers-text")),
    },
  };
}

/** Gateway options the Worker does not read, and what to set instead. */
const NOT_ON_WORKERS: Record<string, string> = {
  cert: "put the PEM text in the secret CHORIA_EDGE_GATEWAY_CERT_PEM",
  key: "put the PEM text in the secret CHORIA_EDGE_GATEWAY_KEY_PEM",
  keys: "put the JSON text in the secret CHORIA_EDGE_GATEWAY_KEYS_JSON",
  triggers: "put the file's text in CHORIA_EDGE_GATEWAY_TRIGGERS_TEXT",
  "replay-store": "a Worker keeps replay claims in its Durable Object",
  listen: "Node only",
  "metrics-listen": "Node only; Cloudflare counts a Worker's requests",
  audit: "Node only; a Worker's audit lines go to its log",
  "ready-file": "Node only",
  "public-url": "Node and Lambda only",
};

/** The entry module, the Durable Object the default connection mode needs, and no Node-only setting. */
function wranglerChecks({ wrangler, get }: Configuration): CheckResult[] {
  if (wrangler === undefined) return [];
  const ignored = Object.entries(NOT_ON_WORKERS).filter(([flag]) => get(flag) !== undefined);
  const results = [
    wrangler.main === "functions/cloudflare.ts"
      ? ok("wrangler", `${wrangler.path}: main = ${wrangler.main}`)
      : warn(
          "wrangler",
          `${wrangler.path}: main is ${wrangler.main ?? "not set"}; the gateway's entry is functions/cloudflare.ts`,
        ),
  ];
  const mode = get("nats-connection") ?? "durable-object";
  const bound = wrangler.durableObjects.some(
    (b) => b.name === "GATEWAY_CONNECTION" && b.className === "GatewayConnection",
  );
  if (mode === "durable-object" && !bound)
    results.push(
      fail(
        "durable-obj",
        'no binding GATEWAY_CONNECTION of class GatewayConnection: add [[durable_objects.bindings]] name = "GATEWAY_CONNECTION", class_name = "GatewayConnection" and a [[migrations]] entry with new_sqlite_classes = ["GatewayConnection"]',
      ),
    );
  else if (mode === "per-request" && get("jobs") === "on")
    results.push(
      fail(
        "durable-obj",
        "CHORIA_EDGE_GATEWAY_JOBS=on needs CHORIA_EDGE_GATEWAY_NATS_CONNECTION=durable-object",
      ),
    );
  else
    results.push(
      ok("durable-obj", mode === "durable-object" ? "GATEWAY_CONNECTION bound" : "per-request connections"),
    );
  const ignoredText = ignored.map(
    ([flag, instead]) => `${gatewayOptionName(flag, "workers")} is ignored by a Worker: ${instead}`,
  );
  results.push(
    ignored.length === 0
      ? ok("settings", "every setting is one a Worker reads")
      : fail("settings", ignoredText.join("; ")),
  );
  return results;
}
