import * as z from "zod";
import {
  LISTEN_PATTERN,
  listenAddress,
  type OptionValue,
  envName as optionEnvName,
  readOptions,
} from "../config/mod.ts";
import { NAME_MAX_LENGTH } from "../protocol/mod.ts";
import { natsAuthSchema, natsConnectionChoice, natsTlsSchema } from "../transport/mod.ts";
import { BROKER_ENV_PREFIX, BROKER_OPTIONS, type BrokerSide } from "./flags/mod.ts";

// A single NATS subject token as Choria builds them: printable ASCII without `*`, `>` or `.`.
const TOKEN = /^[\x21-\x29\x2b-\x2d\x2f-\x3d\x3f-\x7e]+$/;
const token = (what: string) =>
  z
    .string()
    .max(NAME_MAX_LENGTH)
    .regex(TOKEN, `${what} must be one NATS subject token (printable ASCII, no '.', '*' or '>')`)
    .refine((t) => !t.startsWith("$"), `${what} must not start with '$' (NATS's reserved namespaces)`);

/** A subject pattern with NATS wildcards: `*` stands for one token, a final `>` for one or more. */
export function isSubjectPattern(pattern: string): boolean {
  const tokens = pattern.split(".");
  return tokens.every(
    (t, i) => t === "*" || (t === ">" && i === tokens.length - 1) || (t !== ">" && TOKEN.test(t)),
  );
}

const natsSideSchema = z.object({
  servers: z.array(z.string().min(1)).min(1).default(["nats://127.0.0.1:4222"]),
  auth: z._default(natsAuthSchema, { type: "none" }),
  tls: z.optional(natsTlsSchema),
});

const positiveInt = (fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(1).max(max).default(fallback);

const brokerConfigSchema = z.object({
  /** The federation broker cluster this instance serves (`plugin.choria.federation.cluster` in Go). */
  cluster: token("cluster").default("mcollective"),
  /** This process's name within the cluster; instances of one cluster should differ. */
  instance: token("instance"),
  /** The name recorded in seen-by hops, as Go's broker records its certname. */
  identity: z.string().min(1).max(253),
  /** Collectives this cluster may reach: broadcast agent and node subjects in them are allowed targets. */
  collectives: z.array(token("collective")).default(["mcollective"]),
  /**
   * Collectives whose reply subjects (`<collective>.reply.…`) requests may name as reply-to; unset, the
   * same as `collectives`. Replies into any other collective's namespace would reach its clients.
   */
  replyCollectives: z.array(token("collective")).min(1).optional(),
  /** Further allowed target subject patterns (NATS wildcards), for finer grants than whole collectives. */
  allowSubjects: z.array(z.string().refine(isSubjectPattern, "not a NATS subject pattern")).default([]),
  maxHops: positiveInt(10, 1000),
  maxBytes: positiveInt(1024 * 1024),
  maxTargets: positiveInt(10_000),
  /** Fan-outs (requests with more targets than one batch) in progress per side; beyond this, new
   * messages from that side are dropped. */
  inFlight: positiveInt(1000),
  /** Bytes a side's NATS client may hold unsent (the server is not keeping up) before new messages bound
   * for that side are dropped: the broker's memory bound under back-pressure. */
  maxPendingBytes: positiveInt(64 * 1024 * 1024),
  /** Publishes between flushes when fanning one request out. */
  batchSize: positiveInt(500),
  statsIntervalMs: positiveInt(5000),
  /** Each refusal or drop reason is logged at most once per interval. */
  logIntervalMs: positiveInt(10_000),
  connectTimeoutMs: positiveInt(5000),
  /** `host:port` for /metrics, /healthz and /readyz, or "off". */
  metricsListen: z.string().regex(LISTEN_PATTERN, 'expected "host:port" or "off"').default("127.0.0.1:9464"),
  /** Seed dialect only: also record the connected NATS server in seen-by, as the Ruby broker could. */
  recordRoute: z.boolean().default(false),
  federation: natsSideSchema.default({ servers: ["nats://127.0.0.1:4222"], auth: { type: "none" } }),
  collective: natsSideSchema.default({ servers: ["nats://127.0.0.1:4222"], auth: { type: "none" } }),
});

export type BrokerConfig = z.infer<typeof brokerConfigSchema>;
export type BrokerConfigInput = z.input<typeof brokerConfigSchema>;
// The options themselves are in ./flags, where `broker --help` reads them without this file's schemas.
export { type BrokerSide, brokerUsage } from "./flags/mod.ts";

export interface HostFacts {
  hostname: string;
  pid: number;
}

export function envName(flag: string): string {
  return optionEnvName(BROKER_ENV_PREFIX, flag);
}

export type ParsedBrokerConfig =
  | { ok: true; config: BrokerConfig }
  | { ok: false; error: string }
  | { ok: false; help: true };

function sideInput(
  side: BrokerSide,
  read: { get: (flag: string) => OptionValue | undefined; str: (flag: string) => string | undefined },
): object | string {
  const servers = (read.get(`${side}-servers`) ?? read.get("servers")) as string[] | undefined;
  const choice = natsConnectionChoice(read.str, `${side}-`);
  if (!choice.ok) return `${side} side: ${choice.error}`;
  return {
    ...(servers ? { servers } : {}),
    auth: choice.auth,
    ...(choice.tls ? { tls: choice.tls } : {}),
  };
}

/**
 * Builds the broker configuration from environment variables and command line flags (flags win),
 * filling in defaults that work for the local stack. Never throws.
 */
export function parseBrokerConfig(
  argv: string[],
  env: Record<string, string | undefined>,
  host: HostFacts,
): ParsedBrokerConfig {
  const read = readOptions(BROKER_OPTIONS, BROKER_ENV_PREFIX, argv, env);
  if (!read.ok) return read;
  const { get } = read;

  const federation = sideInput("federation", read);
  if (typeof federation === "string") return { ok: false, error: federation };
  const collective = sideInput("collective", read);
  if (typeof collective === "string") return { ok: false, error: collective };

  const hostToken = host.hostname.replace(/[^A-Za-z0-9_-]/g, "_") || "broker";
  const input = {
    cluster: get("cluster"),
    instance: get("instance") ?? `${hostToken}-${host.pid}`,
    identity: get("identity") ?? (host.hostname || "broker"),
    collectives: get("collectives"),
    replyCollectives: get("reply-collectives"),
    allowSubjects: get("allow-subjects"),
    maxHops: get("max-hops"),
    maxBytes: get("max-bytes"),
    maxTargets: get("max-targets"),
    inFlight: get("in-flight"),
    maxPendingBytes: get("max-pending-bytes"),
    batchSize: get("batch-size"),
    statsIntervalMs: get("stats-interval"),
    logIntervalMs: get("log-interval"),
    connectTimeoutMs: get("connect-timeout"),
    metricsListen: get("metrics-listen"),
    recordRoute: get("record-route"),
    federation,
    collective,
  };
  return brokerConfigFrom(input);
}

/** Validates a configuration object (for embedding the broker in tests and the local stack). */
export function brokerConfigFrom(
  input: unknown,
): { ok: true; config: BrokerConfig } | { ok: false; error: string } {
  const result = brokerConfigSchema.safeParse(input);
  if (result.success) return { ok: true, config: result.data };
  const issue = result.error.issues[0]!;
  return { ok: false, error: `${issue.path.map(String).join(".") || "config"}: ${issue.message}` };
}

/** The `host:port` to listen on for metrics, or undefined when switched off. */
export function metricsAddress(config: BrokerConfig): { host: string; port: number } | undefined {
  return listenAddress(config.metricsListen);
}
