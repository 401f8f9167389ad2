// The tests use the same launcher as the local stack.
export * from "../../infra/nats-server.ts";
