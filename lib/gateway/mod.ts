// The public surface of lib/gateway: import from here, not from the files behind it.
export { createGateway, GATEWAY_VERSION, type GatewayApp } from "./app.ts";
export { gatewayAuthFromKeys, kvReplayStore } from "./auth.ts";
export {
  type GatewayConfig,
  type GatewayConfigInput,
  gatewayConfigFrom,
  parseClusters,
  parseDialects,
} from "./config.ts";
export type { DocsAssets, GatewayAuth } from "./deps.ts";
export type { GatewayMetrics, RequestObservation } from "./metrics.ts";
export { type Connect, connectionPerRequest, type NatsSource, sharedConnection } from "./nats.ts";
export { openApiDocument } from "./openapi.ts";
export { problem, problemResponse } from "./problems.ts";
export { asyncParts } from "./triggers.ts";
