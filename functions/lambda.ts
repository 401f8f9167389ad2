// AWS Lambda entry (Function URL, API Gateway HTTP API v1/v2 payloads, ALB) through hono/aws-lambda.
// Settings come from the same CHORIA_EDGE_GATEWAY_* variables as the Node gateway; Lambda's 4 KB limit
// on environment variables usually means certificate, key and keys file ship in the package or a layer
// (`..._CERT`, `..._KEY`, `..._KEYS` name the files) rather than as PEM text. Everything, the NATS
// connection included, lives at module scope, so warm invocations reuse it.
import { handle, type LambdaContext, type LambdaEvent } from "hono/aws-lambda";
import {
  asyncParts,
  createGateway,
  gatewayAuthFromKeys,
  kvReplayStore,
  sharedConnection,
} from "../lib/gateway/mod.ts";
import { jsonLineLogger } from "../lib/log/mod.ts";
import { auditLine } from "../lib/security/http/mod.ts";
import { loadSigner } from "../lib/security/mod.ts";
import { connectNats } from "../lib/transport/mod.ts";
import { gatewaySettings } from "./gateway-env.ts";

type Handler = ReturnType<typeof handle>;

let built: Promise<Handler> | undefined;

async function build(): Promise<Handler> {
  const parsed = await gatewaySettings([], process.env);
  if (!parsed.ok) throw new Error(`gateway settings: ${"error" in parsed ? parsed.error : "help"}`);
  const { settings } = parsed;
  const log = jsonLineLogger((line) => process.stderr.write(line), {
    component: "gateway",
    runtime: "lambda",
  });
  const signer = await loadSigner({ certPem: settings.certPem, keyPem: settings.keyPem });
  const nats = sharedConnection(
    () =>
      connectNats({
        servers: settings.natsServers,
        name: "choria-edge-gateway-lambda",
        auth: settings.natsAuth,
        ...(settings.natsTls ? { tls: settings.natsTls } : {}),
        ...(settings.natsInboxPrefix ? { inboxPrefix: settings.natsInboxPrefix } : {}),
        timeoutMs: settings.config.connectTimeoutMs,
        log,
      }),
    { connectTimeoutMs: settings.config.connectTimeoutMs },
  );
  const buckets = { log, ...(settings.replicas === undefined ? {} : { replicas: settings.replicas }) };
  // Each warm container has its own memory: only the KV store refuses a replay across containers.
  const auth = await gatewayAuthFromKeys(
    settings.keysJson,
    settings.replayStore === "kv" ? { replay: kvReplayStore(nats, buckets) } : {},
  );
  const app = createGateway({
    config: settings.config,
    signer,
    nats,
    auth,
    audit: (event) => process.stdout.write(`${auditLine(event)}\n`),
    log,
    ...asyncParts({ nats, settings, env: process.env, keys: auth.keys, log }),
  });
  return handle(app);
}

export async function handler(event: LambdaEvent, context: LambdaContext) {
  // A failed start is not cached, so the next invocation tries again (for example after a secret fix).
  built ??= build().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return (await built)(event, context);
}
