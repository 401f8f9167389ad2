// Cloudflare Workers entry. Workers has no TCP for NATS, so the gateway speaks NATS over WebSocket
// (`wsconnect`) to the federation nats-server's websocket listener. A Worker may not use an I/O object
// made while serving another request, so a connection cannot simply live at module scope; two ways:
// - `durable-object` (default): every request is handed to one Durable Object, which keeps a single NATS
//   connection open across requests (and, being one instance, makes the memory replay store global);
// - `per-request`: the Worker connects for each request and closes afterwards.
// The README's gateway section has the measurements behind the default.
import {
  asyncParts,
  type Connect,
  connectionPerRequest,
  createGateway,
  type GatewayApp,
  type GatewayConfigInput,
  gatewayAuthFromKeys,
  gatewayConfigFrom,
  type NatsSource,
  parseClusters,
  parseDialects,
  problem,
  problemResponse,
  sharedConnection,
} from "../lib/gateway/mod.ts";
import { errorText, jsonLineLogger } from "../lib/log/mod.ts";
import { auditLine } from "../lib/security/http/mod.ts";
import { loadSigner } from "../lib/security/mod.ts";
import { connectWebSocket } from "../lib/transport/mod.ts";
import { parseTriggerJson } from "../lib/triggers/mod.ts";
import { gatewayNatsSettings, gatewayOptionName } from "./gateway-nats.ts";

const log = jsonLineLogger((line) => console.error(line.trimEnd()), {
  component: "gateway",
  runtime: "workers",
});

/** The slice of the Durable Object namespace binding used here. */
interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request): Promise<Response> };
}

export interface Env {
  /** ws:// or wss:// URLs of the federation nats-server's websocket listener, comma separated. */
  CHORIA_EDGE_GATEWAY_NATS_SERVERS: string;
  CHORIA_EDGE_GATEWAY_CLUSTERS?: string;
  CHORIA_EDGE_GATEWAY_DIALECTS?: string;
  /** Secrets: the gateway's certificate and key (PEM) and the keys document (JSON). */
  CHORIA_EDGE_GATEWAY_CERT_PEM: string;
  CHORIA_EDGE_GATEWAY_KEY_PEM: string;
  CHORIA_EDGE_GATEWAY_KEYS_JSON: string;
  /** Secrets, one way to log in to NATS: a token, an nkey seed (SU...), the text of a .creds file, or a
   * user and password. TLS client certificates, CA files and .creds files by path are refused at start-up:
   * a Worker can use none of them. */
  CHORIA_EDGE_GATEWAY_NATS_TOKEN?: string;
  CHORIA_EDGE_GATEWAY_NATS_NKEY_SEED?: string;
  CHORIA_EDGE_GATEWAY_NATS_CREDS?: string;
  CHORIA_EDGE_GATEWAY_NATS_USER?: string;
  CHORIA_EDGE_GATEWAY_NATS_PASSWORD?: string;
  /** Subject prefix of request replies instead of `_INBOX`, as the server's permissions for the user say. */
  CHORIA_EDGE_GATEWAY_NATS_INBOX_PREFIX?: string;
  /** JetStream replicas of the jobs and data buckets when this gateway creates them (3 on a 3-server cluster). */
  CHORIA_EDGE_GATEWAY_REPLICAS?: string;
  CHORIA_EDGE_GATEWAY_IDENTITY?: string;
  CHORIA_EDGE_GATEWAY_MAX_BODY_BYTES?: string;
  CHORIA_EDGE_GATEWAY_MAX_HOOK_BODY_BYTES?: string;
  CHORIA_EDGE_GATEWAY_MAX_TIMEOUT?: string;
  CHORIA_EDGE_GATEWAY_DISCOVERY_IDLE?: string;
  CHORIA_EDGE_GATEWAY_CONNECT_TIMEOUT?: string;
  /** `on`: async requests and /v1/jobs in the collectors' JetStream KV bucket (durable-object mode only). */
  CHORIA_EDGE_GATEWAY_JOBS?: string;
  CHORIA_EDGE_GATEWAY_SYNC_BUDGET?: string;
  /**
   * Webhook triggers as JSON text (`choria-edge hook compile` turns the YAML file into it: the Worker
   * carries no YAML parser); their secrets are further Worker secrets named in it.
   */
  CHORIA_EDGE_GATEWAY_TRIGGERS_TEXT?: string;
  /** A secret: seals callback secrets in job records; the collectors hold the same key. */
  CHORIA_EDGE_GATEWAY_CALLBACK_SEAL_KEY?: string;
  CHORIA_EDGE_GATEWAY_DATA_BUCKET?: string;
  /** `durable-object` (default) or `per-request`. */
  CHORIA_EDGE_GATEWAY_NATS_CONNECTION?: string;
  GATEWAY_CONNECTION?: DurableObjectNamespaceLike;
}

async function buildApp(
  env: Env,
  source: (connect: Connect, connectTimeoutMs: number) => NatsSource,
  mode: "durable-object" | "per-request",
): Promise<GatewayApp> {
  const number = (value: string | undefined) =>
    value === undefined || value === "" ? undefined : Number(value);
  let clusters: Record<string, string[]> | undefined;
  if (env.CHORIA_EDGE_GATEWAY_CLUSTERS) {
    const parsed = parseClusters(env.CHORIA_EDGE_GATEWAY_CLUSTERS);
    if (!parsed.ok) throw new Error(parsed.error);
    clusters = parsed.clusters;
  }
  const config = gatewayConfigFrom({
    ...(clusters ? { clusters } : {}),
    ...(env.CHORIA_EDGE_GATEWAY_DIALECTS
      ? { dialects: parseDialects(env.CHORIA_EDGE_GATEWAY_DIALECTS) as GatewayConfigInput["dialects"] }
      : {}),
    identity: env.CHORIA_EDGE_GATEWAY_IDENTITY || undefined,
    maxBodyBytes: number(env.CHORIA_EDGE_GATEWAY_MAX_BODY_BYTES),
    maxHookBodyBytes: number(env.CHORIA_EDGE_GATEWAY_MAX_HOOK_BODY_BYTES),
    maxTimeoutMs: number(env.CHORIA_EDGE_GATEWAY_MAX_TIMEOUT),
    discoveryIdleMs: number(env.CHORIA_EDGE_GATEWAY_DISCOVERY_IDLE),
    connectTimeoutMs: number(env.CHORIA_EDGE_GATEWAY_CONNECT_TIMEOUT),
    syncBudgetMs: number(env.CHORIA_EDGE_GATEWAY_SYNC_BUDGET),
    callbackSealKey: env.CHORIA_EDGE_GATEWAY_CALLBACK_SEAL_KEY || undefined,
  });
  if (!config.ok) throw new Error(`gateway settings: ${config.error}`);
  const jobs = env.CHORIA_EDGE_GATEWAY_JOBS ?? "off";
  if (jobs !== "on" && jobs !== "off") throw new Error(`CHORIA_EDGE_GATEWAY_JOBS: on or off, not ${jobs}`);
  // The jobs store keeps its bucket open on a connection that outlives requests; per request there is none.
  if (jobs === "on" && mode === "per-request")
    throw new Error("CHORIA_EDGE_GATEWAY_JOBS=on needs CHORIA_EDGE_GATEWAY_NATS_CONNECTION=durable-object");
  const signer = await loadSigner({
    certPem: env.CHORIA_EDGE_GATEWAY_CERT_PEM,
    keyPem: env.CHORIA_EDGE_GATEWAY_KEY_PEM,
  });
  const natsSettings = gatewayNatsSettings((flag) => {
    const value = (env as unknown as Record<string, unknown>)[gatewayOptionName(flag, "workers")];
    return typeof value === "string" && value !== "" ? value : undefined;
  }, "workers");
  if ("error" in natsSettings) throw new Error(natsSettings.error);
  const { natsServers, natsAuth, natsInboxPrefix, replicas } = natsSettings;
  const connect: Connect = () =>
    connectWebSocket({
      servers: natsServers,
      name: "choria-edge-gateway-workers",
      timeoutMs: config.config.connectTimeoutMs,
      auth: natsAuth,
      ...(natsInboxPrefix ? { inboxPrefix: natsInboxPrefix } : {}),
    });
  const nats = source(connect, config.config.connectTimeoutMs);
  const auth = await gatewayAuthFromKeys(env.CHORIA_EDGE_GATEWAY_KEYS_JSON);
  return createGateway({
    config: config.config,
    signer,
    nats,
    auth,
    audit: (event) => console.log(auditLine(event)),
    log,
    ...asyncParts({
      nats,
      settings: {
        jobs: jobs === "on",
        ...(replicas === undefined ? {} : { replicas }),
        ...(env.CHORIA_EDGE_GATEWAY_DATA_BUCKET ? { dataBucket: env.CHORIA_EDGE_GATEWAY_DATA_BUCKET } : {}),
        ...(env.CHORIA_EDGE_GATEWAY_TRIGGERS_TEXT
          ? {
              triggers: {
                text: env.CHORIA_EDGE_GATEWAY_TRIGGERS_TEXT,
                filename: "CHORIA_EDGE_GATEWAY_TRIGGERS_TEXT",
              },
            }
          : {}),
      },
      // Trigger secrets are Worker secrets, named by the trigger file.
      env: env as unknown as Record<string, string | undefined>,
      keys: auth.keys,
      parseTriggers: parseTriggerJson,
    }),
  });
}

/** Caches a built app per isolate; a failed build is retried by the next request. */
function cached(build: () => Promise<GatewayApp>): () => Promise<GatewayApp> {
  let app: Promise<GatewayApp> | undefined;
  return () => {
    app ??= build().catch((err: unknown) => {
      app = undefined;
      throw err;
    });
    return app;
  };
}

let perRequestApp: (() => Promise<GatewayApp>) | undefined;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const mode = env.CHORIA_EDGE_GATEWAY_NATS_CONNECTION || "durable-object";
    if (mode === "durable-object") {
      const namespace = env.GATEWAY_CONNECTION;
      if (namespace === undefined) return new Response("GATEWAY_CONNECTION binding missing", { status: 500 });
      return namespace.get(namespace.idFromName("nats")).fetch(request);
    }
    perRequestApp ??= cached(() =>
      buildApp(
        env,
        (connect, connectTimeoutMs) => connectionPerRequest(connect, { connectTimeoutMs }),
        "per-request",
      ),
    );
    return serve(perRequestApp, request);
  },
};

/** Runs the app; a gateway that cannot start (a bad secret, say) answers with a problem document. */
async function serve(app: () => Promise<GatewayApp>, request: Request): Promise<Response> {
  let built: GatewayApp;
  try {
    built = await app();
  } catch (err) {
    // The reason may name a secret's variable or quote its text: it is logged, never answered.
    log("error", "the gateway is not configured correctly", {
      error: errorText(err),
    });
    return problemResponse(problem("internal", "the gateway is not configured correctly; its log says why"));
  }
  return built.fetch(request);
}

/** Holds one NATS connection for every request routed to it. */
export class GatewayConnection {
  readonly #app: () => Promise<GatewayApp>;

  constructor(_state: unknown, env: Env) {
    this.#app = cached(() =>
      buildApp(
        env,
        (connect, connectTimeoutMs) => sharedConnection(connect, { connectTimeoutMs }),
        "durable-object",
      ),
    );
  }

  fetch(request: Request): Promise<Response> {
    return serve(this.#app, request);
  }
}
