// Node 20 has no global WebSocket, which nats.js's wsconnect (the Worker's connection) needs: for the
// tests of a describe block, undici's stands in, as workerd's does in a Worker.
import { WebSocket as UndiciWebSocket } from "undici";
import { afterAll, beforeAll } from "vitest";

export function useGlobalWebSocket(): void {
  const global = globalThis as { WebSocket?: unknown };
  const before = global.WebSocket;
  beforeAll(() => {
    global.WebSocket ??= UndiciWebSocket;
  });
  afterAll(() => {
    global.WebSocket = before;
  });
}
