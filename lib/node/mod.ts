// The public surface of lib/node: import from here, not from the files behind it.
export { generateFleet, type NodeIdentity, parseFleet } from "./fleet.ts";
export { type HostCodec, NodeHost } from "./responder.ts";
export { type NodeService, serveNodes } from "./service.ts";
