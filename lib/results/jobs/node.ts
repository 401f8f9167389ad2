// The Node-only surface of lib/results/jobs, for the collector process: its options, and callbacks over
// HTTP (node:http, DNS checks) and to AWS Lambda. Kept apart from mod.ts, which the gateway's Worker uses.
export { type CollectorConfig, collectorUsage, parseCollectorConfig } from "./config.ts";
export { httpCallbackSender } from "./http-callback.ts";
export { lambdaCallbackSender } from "./lambda.ts";
