import * as z from "zod/mini";
// For zod/mini's English messages (lib/protocol/zod-messages.ts).
import "../protocol/mod.ts";

const NAME = /^[A-Za-z0-9_-]+$/;
const name = z.string().check(z.minLength(1), z.maxLength(128), z.regex(NAME));

/** The collectives a cluster reaches; the first is where requests that name none go. */
export type Collectives = readonly [string, ...string[]];

/** Settings every runtime shares; each field has a default that suits the local stack. */
export const gatewayConfigSchema = z.object({
  /** Federation clusters this gateway may publish into, each with the collectives it reaches. */
  clusters: z._default(
    z
      .record(
        name,
        // min(1) makes the first one there; the type says so, so that no reader has to.
        z.pipe(
          z.array(name).check(z.minLength(1)),
          z.transform((list) => list as readonly string[] as Collectives),
        ),
      )
      .check(z.refine((clusters) => Object.keys(clusters).length > 0, "configure at least one cluster")),
    { mcollective: ["mcollective"] },
  ),
  /**
   * Clusters whose brokers and nodes speak the 2017 dialect (`seed`: the older connector's packets, no
   * `protocol`, a flat seen-by); every other cluster gets `choria:transport:1` (`v1`).
   */
  dialects: z._default(z.record(name, z.enum(["v1", "seed"])), {}),
  /** The origin callers address (`https://gw.example.com`) when a proxy in front changes it; signatures cover it. */
  publicUrl: z.optional(z.url()),
  /** `senderid` and `mc_sender` of the gateway's requests; default: the signing certificate's name. */
  identity: z.optional(z.string().check(z.minLength(1), z.maxLength(253))),
  /** Largest request body accepted, checked before the body is read in full. */
  maxBodyBytes: z._default(z.number().check(z.int(), z.gte(1024), z.lte(16 * 1024 * 1024)), 64 * 1024),
  /** Largest webhook body accepted on /v1/hooks: senders' payloads run larger (a big GitHub push). */
  maxHookBodyBytes: z._default(z.number().check(z.int(), z.gte(1024), z.lte(32 * 1024 * 1024)), 1024 * 1024),
  /** Upper bound for `timeout` and `discovery_timeout`. */
  maxTimeoutMs: z._default(z.number().check(z.int(), z.gte(1000)), 60_000),
  /** Discovery ends early once no new node has answered for this long. */
  discoveryIdleMs: z._default(z.number().check(z.int(), z.gte(10)), 300),
  /** How long a NATS connection attempt may take before the request gets a 503. */
  connectTimeoutMs: z._default(z.number().check(z.int(), z.gte(50)), 2000),
  /**
   * How long a synchronous JSON request may keep its caller waiting when async jobs are on. A request
   * that could take longer (discovery plus timeout) runs as a job and answers 202 with the job once the
   * budget is spent; webhook senders give up after about 10 s, hence the default.
   */
  syncBudgetMs: z._default(z.number().check(z.int(), z.gte(100)), 8000),
  /**
   * AES key (base64 of 32 bytes) that callback secrets are sealed with before they go into a job record;
   * the collectors get the same key to open them. Without it, callbacks that carry a secret are refused.
   */
  callbackSealKey: z.optional(
    z.string().check(z.regex(/^[A-Za-z0-9+/]{43}=$/, "expected base64 of 32 bytes")),
  ),
  /** Choria request TTL in seconds. */
  ttlSeconds: z._default(z.number().check(z.int(), z.gte(30)), 60),
});

export type GatewayConfig = z.output<typeof gatewayConfigSchema>;
export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;

export type ConfigResult = { ok: true; config: GatewayConfig } | { ok: false; error: string };

export function gatewayConfigFrom(input: GatewayConfigInput): ConfigResult {
  const parsed = gatewayConfigSchema.safeParse(input);
  if (parsed.success) {
    const unknown = Object.keys(parsed.data.dialects).filter((c) => !(c in parsed.data.clusters));
    if (unknown.length > 0)
      return { ok: false, error: `dialects: ${unknown.join(", ")} is not a configured cluster` };
    return { ok: true, config: parsed.data };
  }
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${issue?.path.join(".") || "config"}: ${issue?.message ?? "invalid"}` };
}

/**
 * Parses the cluster map as environment variables and flags give it: JSON (`{"C1":["mcollective"]}`) or
 * `C1=mcollective,other;C2=mcollective`. A cluster without `=` reaches the collective `mcollective`.
 */
export function parseClusters(
  text: string,
): { ok: true; clusters: Record<string, string[]> } | { ok: false; error: string } {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      return { ok: true, clusters: JSON.parse(trimmed) as Record<string, string[]> };
    } catch (err) {
      return { ok: false, error: `clusters: not JSON: ${(err as Error).message}` };
    }
  }
  const clusters: Record<string, string[]> = {};
  for (const entry of trimmed.split(/[;\s]+/).filter(Boolean)) {
    const [cluster = "", collectives] = entry.split("=", 2);
    clusters[cluster] = collectives === undefined ? ["mcollective"] : collectives.split(",").filter(Boolean);
  }
  return { ok: true, clusters };
}

/** Parses `C2=seed;C3=v1` (flags and environment variables) into the dialects map; values are checked later. */
export function parseDialects(text: string): Record<string, string> {
  const dialects: Record<string, string> = {};
  for (const entry of text
    .trim()
    .split(/[;,\s]+/)
    .filter(Boolean)) {
    const [cluster = "", dialect = ""] = entry.split("=", 2);
    dialects[cluster] = dialect;
  }
  return dialects;
}
