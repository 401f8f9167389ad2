import * as z from "zod";
import { parseDuration } from "../../clock/mod.ts";
import { envName, LISTEN_PATTERN, readOptions } from "../../config/mod.ts";
import { natsAuthSchema, natsConnectionChoice, natsTlsSchema } from "../../transport/mod.ts";
import { COLLECTOR_ENV_PREFIX, COLLECTOR_OPTIONS } from "./flags/mod.ts";
import { DEFAULT_BUCKET } from "./keys.ts";

export { parseDuration };

const DAY_MS = 86_400_000;

const duration = (fallback: number) =>
  z
    .union([z.number(), z.string()])
    .transform((value, ctx) => {
      const ms = typeof value === "number" ? value : parseDuration(value);
      if (ms === undefined || !Number.isSafeInteger(ms) || ms < 1) {
        ctx.addIssue({ code: "custom", message: "expected a duration such as 500ms, 30s, 5m, 2h or 7d" });
        return z.NEVER;
      }
      return ms;
    })
    .default(fallback);

const positiveInt = (fallback: number, max: number) =>
  z.coerce.number().int().min(1).max(max).default(fallback);

const collectorConfigSchema = z.object({
  servers: z.array(z.string().min(1)).min(1).default(["nats://127.0.0.1:4222"]),
  auth: z._default(natsAuthSchema, { type: "none" }),
  tls: z.optional(natsTlsSchema),
  /** Connection name shown by nats-server. */
  name: z.string().min(1).max(128),
  /** Subject prefix of request replies instead of `_INBOX` (matching the server's permissions). */
  inboxPrefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "expected subject tokens without wildcards")
    .optional(),
  bucket: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default(DEFAULT_BUCKET),
  /** Trigger data and locks: where a trigger run's locks are released and its `on_complete` writes made. */
  dataBucket: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("choria_edge_data"),
  /** How long jobs, their results and their idempotency claims are kept (the bucket's max_age). */
  retentionMs: duration(7 * DAY_MS),
  replicas: positiveInt(1, 5),
  /** `stream`: JetStream captures replies while no collector runs; `queue`: core NATS, at most once. */
  capture: z.enum(["stream", "queue"]).default("stream"),
  /** How long a captured reply waits for a collector. */
  captureMaxAgeMs: duration(DAY_MS),
  sweepIntervalMs: duration(1000),
  /** Standard Webhooks secret (`whsec_…`) for URL callbacks that bring none of their own. */
  callbackSecret: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, "expected whsec_<base64>")
    .optional(),
  /**
   * Opens the callback secrets gateways seal into job records (base64 of 32 bytes, the gateways' own
   * `--callback-seal-key`); without it, callbacks with a sealed secret fail as invalid_target.
   */
  callbackSealKey: z
    .string()
    .regex(/^[A-Za-z0-9+/]{43}=$/, "expected base64 of 32 bytes")
    .optional(),
  callbackTimeoutMs: duration(15_000),
  callbackAttempts: positiveInt(12, 100),
  callbackBackoffMs: duration(5000),
  /** Also deliver to http:// callback URLs (the local stack); https only otherwise. */
  allowHttpCallbacks: z.boolean().default(false),
  /**
   * Also deliver to loopback, private, unique-local and CGNAT addresses (the local stack, receivers inside
   * the operator's network); refused by default, after DNS resolution. Link-local and cloud metadata
   * addresses stay refused.
   */
  allowPrivateCallbacks: z.boolean().default(false),
  lambdaRegion: z.string().min(1).optional(),
  lambdaEndpoint: z.url().optional(),
  connectTimeoutMs: duration(5000),
  /** `host:port` for /metrics, /healthz and /readyz, or "off". */
  metricsListen: z.string().regex(LISTEN_PATTERN, 'expected "host:port" or "off"').default("off"),
});

export type CollectorConfig = z.infer<typeof collectorConfigSchema>;

// The options themselves are in ./flags, where `collector --help` reads them without this file's schemas.
export { collectorUsage } from "./flags/mod.ts";

export function collectorEnvName(flag: string): string {
  return envName(COLLECTOR_ENV_PREFIX, flag);
}

export type ParsedCollectorConfig =
  | { ok: true; config: CollectorConfig }
  | { ok: false; error: string }
  | { ok: false; help: true };

/** Builds the collector configuration from environment variables and flags (flags win). Never throws. */
export function parseCollectorConfig(
  argv: string[],
  env: Record<string, string | undefined>,
  host: { hostname: string; pid: number },
): ParsedCollectorConfig {
  const read = readOptions(COLLECTOR_OPTIONS, COLLECTOR_ENV_PREFIX, argv, env);
  if (!read.ok) return read;
  const choice = natsConnectionChoice(read.str);
  if (!choice.ok) return choice;

  const input: Record<string, unknown> = {
    auth: choice.auth,
    ...(choice.tls ? { tls: choice.tls } : {}),
    name: `choria-edge-collector-${host.hostname.replace(/[^A-Za-z0-9_-]/g, "_") || "host"}-${host.pid}`,
  };
  for (const option of COLLECTOR_OPTIONS) {
    const value = read.get(option.flag);
    if (
      value !== undefined &&
      (collectorConfigSchema.shape as Record<string, unknown>)[option.key] !== undefined
    )
      input[option.key] = value;
  }
  const parsed = collectorConfigFrom(input);
  if (parsed.ok) return parsed;
  // Name the option as the operator wrote it, not the config field.
  const field = parsed.error.slice(0, parsed.error.indexOf(":"));
  const option = COLLECTOR_OPTIONS.find((o) => o.key === field);
  return option ? { ok: false, error: `--${option.flag}${parsed.error.slice(field.length)}` } : parsed;
}

/** Validates a configuration object (for embedding the collector in another process or a test). */
export function collectorConfigFrom(
  input: unknown,
): { ok: true; config: CollectorConfig } | { ok: false; error: string } {
  const result = collectorConfigSchema.safeParse(input);
  if (result.success) return { ok: true, config: result.data };
  const issue = result.error.issues[0]!;
  return { ok: false, error: `${issue.path.map(String).join(".") || "config"}: ${issue.message}` };
}
