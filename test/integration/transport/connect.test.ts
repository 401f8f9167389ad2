import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nkeys } from "@nats-io/nats-core";
import { afterEach, describe, expect, it } from "vitest";
import { createCertificateAuthority, issueCertificate } from "../../../infra/pki.ts";
import type { LogFn } from "../../../lib/transport/auth.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { connectWebSocket } from "../../../lib/transport/websocket.ts";
import { type NatsServer, restartNatsServer, startNatsServer } from "../../support/nats-server.ts";
import { freePort } from "../../support/ports.ts";

describe("NATS connections", () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
  });

  async function server(extraConfig?: string): Promise<NatsServer> {
    const s = await startNatsServer(extraConfig ? { extraConfig } : {});
    cleanup.push(() => s.dispose());
    return s;
  }

  function keep(bus: NatsBus): NatsBus {
    cleanup.push(() => bus.close());
    return bus;
  }

  async function roundTrip(bus: NatsBus): Promise<string> {
    const got = new Promise<string>((resolve) =>
      bus.subscribe("t.echo", (m) => resolve(new TextDecoder().decode(m.data))),
    );
    bus.publish("t.echo", "hello");
    return got;
  }

  it("authenticates with user and password, and refuses a wrong password", async () => {
    const s = await server('authorization { user: "broker", password: "s3cret" }');
    const bus = keep(
      await connectNats({
        servers: s.url,
        name: "t",
        auth: { type: "userpass", user: "broker", pass: "s3cret" },
      }),
    );
    expect(await roundTrip(bus)).toBe("hello");
    await expect(
      connectNats({
        servers: s.url,
        name: "t",
        auth: { type: "userpass", user: "broker", pass: "wrong" },
        timeoutMs: 1000,
      }),
    ).rejects.toThrow();
  });

  it("authenticates with a token", async () => {
    const s = await server('authorization { token: "t0k3n" }');
    const bus = keep(
      await connectNats({ servers: s.url, name: "t", auth: { type: "token", token: "t0k3n" } }),
    );
    expect(await roundTrip(bus)).toBe("hello");
  });

  it("authenticates with an nkey seed", async () => {
    const user = nkeys.createUser();
    const s = await server(`authorization { users: [ { nkey: "${user.getPublicKey()}" } ] }`);
    const seed = new TextDecoder().decode(user.getSeed());
    const bus = keep(await connectNats({ servers: s.url, name: "t", auth: { type: "nkey", seed } }));
    expect(await roundTrip(bus)).toBe("hello");
  });

  it("connects over mutual TLS with files, and reports a tls:// URL", async () => {
    const dir = await mkdtemp(join(tmpdir(), "choria-edge-tls-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const ca = await createCertificateAuthority("test CA");
    const [serverCert, clientCert] = await Promise.all([
      issueCertificate(ca, "localhost"),
      issueCertificate(ca, "fedbroker.example.net"),
    ]);
    const file = async (name: string, text: string) => {
      await writeFile(join(dir, name), text, { mode: 0o600 });
      return join(dir, name);
    };
    const tls = {
      caFile: await file("ca.pem", ca.certPem),
      certFile: await file("client.pem", clientCert.certPem),
      keyFile: await file("client-key.pem", clientCert.keyPem),
    };
    const serverCertFile = await file("server.pem", serverCert.certPem);
    const serverKeyFile = await file("server-key.pem", serverCert.keyPem);
    const s = await server(
      `tls { cert_file: "${serverCertFile}", key_file: "${serverKeyFile}", ca_file: "${tls.caFile}", verify: true }`,
    );
    const url = `nats://localhost:${s.port}`;
    const bus = keep(await connectNats({ servers: url, name: "t", tls }));
    expect(await roundTrip(bus)).toBe("hello");
    expect(bus.connectedUrl()).toBe(`tls://localhost:${s.port}`);
    await expect(
      connectNats({ servers: url, name: "t", tls: { caFile: tls.caFile }, timeoutMs: 1000 }),
    ).rejects.toThrow();
  });

  it("logs each state change, refuses publishes while disconnected, and reconnects after a restart", async () => {
    const first = await server();
    const events: string[] = [];
    const log: LogFn = (_level, msg) => events.push(msg);
    const bus = keep(await connectNats({ servers: first.url, name: "t", log }));
    expect(bus.connectedUrl()).toBe(`nats://127.0.0.1:${first.port}`);
    const received: string[] = [];
    bus.subscribe("t.buffered", (m) => received.push(new TextDecoder().decode(m.data)));
    await bus.flush();

    await first.stop();
    await waitFor(() => !bus.isConnected());
    expect(bus.connectedUrl()).toBe("unknown");
    expect(bus.publish("t.buffered", "lost while disconnected")).toBe(false);

    const second = await restartNatsServer(first);
    cleanup.push(() => second.dispose());
    await waitFor(() => bus.isConnected(), 10_000);
    expect(bus.publish("t.buffered", "after the restart")).toBe(true);
    await bus.flush();
    await waitFor(() => received.length > 0);
    expect(received).toEqual(["after the restart"]);
    expect(events).toContain("nats disconnected");
    expect(events).toContain("nats reconnected");
  });

  it("waits for a server that is not up yet, and gives up when aborted", async () => {
    const port = await freePort();
    const waiting = connectNats({
      servers: `nats://127.0.0.1:${port}`,
      name: "t",
      waitForServer: true,
      timeoutMs: 500,
    });
    await new Promise((r) => setTimeout(r, 300));
    const s = await startNatsServer({ port });
    cleanup.push(() => s.dispose());
    const bus = keep(await waiting);
    expect(bus.isConnected()).toBe(true);

    const abort = new AbortController();
    const never = connectNats({
      servers: `nats://127.0.0.1:${await freePort()}`,
      name: "t",
      waitForServer: true,
      timeoutMs: 200,
      signal: abort.signal,
    });
    setTimeout(() => abort.abort(new Error("gave up")), 300);
    await expect(never).rejects.toThrow("gave up");
  });

  it("reports the bytes it holds unsent until they reach the socket", async () => {
    const s = await server();
    const bus = keep(await connectNats({ servers: s.url, name: "t" }));
    expect(bus.pendingBytes()).toBe(0);
    for (let i = 0; i < 10; i++) bus.publish("t.pending", new Uint8Array(1000));
    expect(bus.pendingBytes()).toBeGreaterThanOrEqual(10_000);
    await bus.flush();
    expect(bus.pendingBytes()).toBe(0);
  });

  it("with coalesceWrites, what callbacks of one event loop turn publish leaves in one socket write", async () => {
    const s = await server();
    const receiver = keep(await connectNats({ servers: s.url, name: "receiver" }));
    let received = 0;
    receiver.subscribe("t.coalesce", () => received++);
    await receiver.flush();
    const writesOf = async (bus: NatsBus) => {
      // Node's Writable hands the socket's implementation one _write per chunk, or one _writev per batch.
      type Chunked = { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
      const socket = (bus.connection as unknown as { protocol: { transport: { socket: Chunked } } }).protocol
        .transport.socket;
      let writes = 0;
      for (const method of ["_write", "_writev"] as const) {
        const original = socket[method].bind(socket);
        socket[method] = (...args) => {
          writes++;
          original(...args);
        };
      }
      // Five callbacks of one turn, each publishing as a request whose signature is ready would.
      await new Promise<void>((resolve) => {
        for (let i = 0; i < 5; i++) setImmediate(() => bus.publish("t.coalesce", `m${i}`));
        setImmediate(() => setImmediate(resolve));
      });
      const made = writes;
      await bus.flush();
      return made;
    };
    expect(await writesOf(keep(await connectNats({ servers: s.url, name: "plain" })))).toBe(5);
    expect(
      await writesOf(keep(await connectNats({ servers: s.url, name: "coalescing", coalesceWrites: true }))),
    ).toBe(1);
    await waitFor(() => received === 10);
  });

  it("drains: everything published before drain arrives, then the connection is closed", async () => {
    const s = await server();
    const sender = await connectNats({ servers: s.url, name: "sender" });
    const receiver = keep(await connectNats({ servers: s.url, name: "receiver" }));
    let count = 0;
    receiver.subscribe("t.drain", () => count++);
    await receiver.flush();
    for (let i = 0; i < 1000; i++) sender.publish("t.drain", "x");
    await sender.drain();
    expect(sender.isConnected()).toBe(false);
    expect(sender.publish("t.drain", "late")).toBe(false);
    await waitFor(() => count === 1000);
  });

  it("connectWebSocket rejects with a clear error when no connection comes up in time", async () => {
    const s = await startNatsServer({ websocket: true });
    cleanup.push(() => s.dispose());
    const started = Date.now();
    const attempt = connectWebSocket({ servers: s.wsUrl!, name: "t", timeoutMs: 300 });
    if (typeof (globalThis as { WebSocket?: unknown }).WebSocket === "undefined") {
      await expect(attempt).rejects.toThrow(
        /not established within 300 ms \(this runtime has no global WebSocket\)/,
      );
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } else {
      const bus = keep(await attempt);
      expect(await roundTrip(bus)).toBe("hello");
    }
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
