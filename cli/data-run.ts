// `choria-edge data` once its arguments are read: connects to the federation NATS and does the action.
import { DataStore, InvalidKey, Locks, ValueTooLarge } from "../lib/data/mod.ts";
import { NatsKvBucket } from "../lib/transport/mod.ts";
import type { DataAction, DataArgs, DataIo } from "./data.ts";
import { localStack } from "./local-stack.ts";
import { connectClient } from "./nats-client.ts";

/** get, put, delete or lock, on the bucket the options name: exit 0, 1 when there is nothing to show, 2 on bad input. */
export async function runDataAction(
  { values, str }: DataArgs,
  request: DataAction,
  io: DataIo,
): Promise<number> {
  const stack = localStack(io.stderr);
  const server =
    values.server ??
    process.env.CHORIA_EDGE_GATEWAY_NATS_SERVERS ??
    stack?.federation.url ??
    "nats://127.0.0.1:4222";
  const bus = await connectClient("data", str, server, stack, {
    name: "choria-edge-data",
    stderr: io.stderr,
  });
  if (typeof bus === "number") return bus;
  try {
    const store = new DataStore(await NatsKvBucket.open(bus.connection, { name: values.bucket, ttlMs: 0 }));
    const json = values.json;
    const { key } = request;
    switch (request.action) {
      case "get": {
        const entry = await store.get(key);
        if (entry === undefined) {
          io.stderr.write(`no value for ${key}\n`);
          return 1;
        }
        io.stdout.write(json ? `${JSON.stringify({ key, ...entry })}\n` : `${entry.value}\n`);
        return 0;
      }
      case "put": {
        const text = request.value === "-" ? (await io.stdin()).replace(/\r?\n$/, "") : request.value;
        const revision = await store.put(key, text);
        io.stdout.write(
          json ? `${JSON.stringify({ key, revision })}\n` : `stored ${key} (revision ${revision})\n`,
        );
        return 0;
      }
      case "delete":
        await store.delete(key);
        io.stdout.write(json ? `${JSON.stringify({ key, deleted: true })}\n` : `deleted ${key}\n`);
        return 0;
      default: {
        const state = await new Locks(store).inspect(key);
        const held = state !== undefined && !state.expired;
        if (json) io.stdout.write(`${JSON.stringify(state ?? { name: key, held: false })}\n`);
        else if (held)
          io.stdout.write(
            `${key} is held by ${state.holder} since ${new Date(state.acquiredAt).toISOString()}, until ${new Date(state.expiresAt).toISOString()} unless renewed (${state.renewals} renewals)\n`,
          );
        else io.stdout.write(`${key} is free\n`);
        return held ? 0 : 1;
      }
    }
  } catch (err) {
    if (err instanceof InvalidKey || err instanceof ValueTooLarge) {
      io.stderr.write(`choria-edge data: ${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await bus.close();
  }
}
