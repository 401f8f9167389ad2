// AWS Lambda entries: `handler` answers buffered (API Gateway v1/v2 payloads, ALB, Function URLs in BUFFERED
// mode), `stream` streams (Function URLs in RESPONSE_STREAM mode: NDJSON and SSE arrive as written).
// Settings come from the same CHORIA_EDGE_GATEWAY_* variables as the Node gateway; Lambda's 4 KB limit
// on environment variables usually means certificate, key and keys file ship in the package or a layer
// (`..._CERT`, `..._KEY`, `..._KEYS` name the files) rather than as PEM text. Everything, the NATS
// connection included, lives at module scope, so warm invocations reuse it.

import type { GatewayApp } from "../lib/gateway/mod.ts";
import { bufferedHandler, type LambdaContext, type LambdaEvent, streamingHandler } from "./lambda-adapter.ts";

let built: Promise<GatewayApp> | undefined;

async function build(): Promise<GatewayApp> {
  // Loaded here, not at the top: Lambda runs a module's import before its first invocation on every cold
  // start, and buildLambda splits what is imported here into chunks of their own.
  const [{ jsonLineLogger }, { gatewaySettings }, { nodeGateway }] = await Promise.all([
    import("../lib/log/mod.ts"),
    import("./gateway-env.ts"),
    import("./gateway-node.ts"),
  ]);
  const parsed = await gatewaySettings([], process.env);
  if (!parsed.ok) throw new Error(`gateway settings: ${"error" in parsed ? parsed.error : "help"}`);
  const { settings } = parsed;
  const log = jsonLineLogger((line) => process.stderr.write(line), {
    component: "gateway",
    runtime: "lambda",
  });
  const { app } = await nodeGateway(settings, { log, connectionName: "choria-edge-gateway-lambda" });
  return app;
}

function gateway(): Promise<GatewayApp> {
  // A failed start is not cached, so the next invocation tries again (for example after a secret fix).
  built ??= build().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return built;
}

let buffered: ReturnType<typeof bufferedHandler> | undefined;

export async function handler(event: LambdaEvent, context: LambdaContext) {
  buffered ??= bufferedHandler(await gateway());
  return buffered(event, context);
}

export const stream = streamingHandler(gateway);
