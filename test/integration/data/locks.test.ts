import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DataStore, type Lock, Locks } from "../../../lib/data/mod.ts";
import type { NatsBus } from "../../../lib/transport/bus.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { type NatsServer, restartNatsServer, startNatsServer } from "../../support/nats-server.ts";

const BUCKET = "choria_edge_data_test";
const HOLDER = join(import.meta.dirname, "holder-process.ts");

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Every test gets its own nats-server, since one of them restarts it.
let cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  cleanup = [];
});

interface Gateway {
  bus: NatsBus;
  store: DataStore;
  locks: Locks;
}

/** A nats-server that a test may restart: cleanup stops whichever process runs last, then removes the store. */
async function server(): Promise<{ current: NatsServer }> {
  const first = await startNatsServer({ jetstream: true });
  const handle = { current: first };
  cleanup.push(async () => {
    await handle.current.stop();
    await first.dispose();
  });
  return handle;
}

/** One gateway's view of the shared bucket, over a connection of its own. */
async function gateway(nats: { current: NatsServer }, name: string): Promise<Gateway> {
  const bus = await connectNats({ servers: nats.current.url, name });
  cleanup.push(() => bus.close());
  const store = new DataStore(await NatsKvBucket.open(bus.connection, { name: BUCKET, ttlMs: 60_000 }));
  return { bus, store, locks: new Locks(store) };
}

async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe("data store on JetStream KV", () => {
  it("reads, writes, deletes and compares-and-sets across two connections", async () => {
    const nats = await server();
    const [a, b] = [await gateway(nats, "gateway-a"), await gateway(nats, "gateway-b")];
    const created = await a.store.compareAndSet("deploy.web.version", "1", undefined);
    expect(created.ok).toBe(true);
    const seen = await b.store.get("deploy.web.version");
    expect(seen?.value).toBe("1");
    expect(await a.store.compareAndSet("deploy.web.version", "2a", seen!.revision)).toMatchObject({
      ok: true,
    });
    const lost = await b.store.compareAndSet("deploy.web.version", "2b", seen!.revision);
    expect(lost.ok).toBe(false);
    expect(lost.ok ? undefined : lost.current).toBe((await b.store.get("deploy.web.version"))?.revision);
    expect((await b.store.get("deploy.web.version"))?.value).toBe("2a");

    await b.store.delete("deploy.web.version");
    expect(await a.store.get("deploy.web.version")).toBeUndefined();
    // A deleted key counts as missing for compare-and-set too.
    expect((await a.store.compareAndSet("deploy.web.version", "3", undefined)).ok).toBe(true);
    const unicode = await b.store.put("note", "héllo ✓");
    expect(await a.store.get("note")).toEqual({ value: "héllo ✓", revision: unicode });
  });
});

describe("locks on JetStream KV", () => {
  it("gives each round of a race between two gateways to exactly one of them", async () => {
    const nats = await server();
    const gateways = [await gateway(nats, "gateway-a"), await gateway(nats, "gateway-b")];
    for (let round = 0; round < 24; round++) {
      const taken = await Promise.all(
        gateways.map((g, i) => g.locks.acquire("race", { holder: `g${i}`, ttlMs: 300, timeoutMs: 0 })),
      );
      const won = taken.filter((lock): lock is Lock => lock !== undefined);
      expect(won).toHaveLength(1);
      // Every fourth round ends by expiry rather than release, so that takeovers race too.
      if (round % 4 === 3) await sleep(320);
      else expect(await won[0]!.release()).toBe(true);
    }
  }, 60_000);

  it("never lets the critical sections of two contending gateways overlap", async () => {
    const nats = await server();
    const gateways = [await gateway(nats, "gateway-a"), await gateway(nats, "gateway-b")];
    const sections: { holder: string; enter: number; leave: number }[] = [];
    await Promise.all(
      gateways.map(async (g, i) => {
        for (let turn = 0; turn < 15; turn++) {
          const lock = await g.locks.acquire("critical", { holder: `g${i}`, ttlMs: 2000, timeoutMs: 10_000 });
          if (lock === undefined) throw new Error(`g${i} waited in vain`);
          const enter = Date.now();
          await sleep(5 + Math.random() * 15);
          sections.push({ holder: lock.holder, enter, leave: Date.now() });
          expect(await lock.release()).toBe(true);
        }
      }),
    );
    expect(sections).toHaveLength(30);
    sections.sort((x, y) => x.enter - y.enter);
    for (let i = 1; i < sections.length; i++)
      expect(sections[i]!.enter).toBeGreaterThanOrEqual(sections[i - 1]!.leave);
    expect(new Set(sections.map((s) => s.holder))).toEqual(new Set(["g0", "g1"]));
  }, 60_000);

  it("passes the lock of a holder killed mid-run to a waiting gateway after its TTL, not before", async () => {
    const nats = await server();
    const g = await gateway(nats, "gateway-a");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", HOLDER, nats.current.url, BUCKET, "job", "800"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    cleanup.push(async () => {
      child.kill("SIGKILL");
      await exited;
    });
    const token = await heldLine(child);

    // The child renews: its lock outlives several TTLs while we watch.
    expect(
      await g.locks.acquire("job", { holder: "gateway-a", ttlMs: 800, timeoutMs: 2000 }),
    ).toBeUndefined();
    const alive = await g.locks.inspect("job");
    expect(alive).toMatchObject({ holder: `child-${child.pid}`, expired: false });
    expect(alive!.renewals).toBeGreaterThanOrEqual(2);

    child.kill("SIGKILL");
    await exited;
    const last = await g.locks.inspect("job");
    expect(last?.holder).toBe(`child-${child.pid}`);
    const lock = await g.locks.acquire("job", { holder: "gateway-a", ttlMs: 800, timeoutMs: 5000 });
    expect(lock?.holder).toBe("gateway-a");
    expect(lock!.acquiredAt).toBeGreaterThanOrEqual(last!.expiresAt);
    expect(lock!.token).not.toBe(token);
  }, 30_000);

  it("keeps a held lock and its data through a nats-server restart", async () => {
    const nats = await server();
    const holder = await gateway(nats, "holder");
    const other = await gateway(nats, "other");
    await holder.store.put("job.state", "running");
    const lock = await holder.locks.acquire("job", { holder: "holder", ttlMs: 4000, timeoutMs: 0 });
    if (lock === undefined) throw new Error("no lock");
    const alive = lock.keepAlive();
    cleanup.push(async () => alive.stop());

    await nats.current.stop();
    nats.current = await restartNatsServer(nats.current);
    await waitUntil("both to reconnect", () => holder.bus.isConnected() && other.bus.isConnected());
    // JetStream is ready some moments after the port accepts connections.
    await waitUntil(
      "the bucket to answer",
      async () => (await other.locks.inspect("job").catch(() => undefined)) !== undefined,
    );

    expect(await other.locks.inspect("job")).toMatchObject({ holder: "holder", expired: false });
    expect((await other.store.get("job.state"))?.value).toBe("running");
    const renewals = lock.renewals;
    await waitUntil("a renewal after the restart", () => lock.renewals > renewals, 5000);
    expect(await other.locks.acquire("job", { holder: "other", ttlMs: 4000, timeoutMs: 0 })).toBeUndefined();
    expect(alive.lost.aborted).toBe(false);

    expect(await lock.release()).toBe(true);
    expect((await other.locks.acquire("job", { holder: "other", ttlMs: 4000, timeoutMs: 0 }))?.holder).toBe(
      "other",
    );
  }, 30_000);
});

/** The token the child prints once it holds the lock. */
function heldLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /^held (\S+)\n/m.exec(out);
      if (match) resolve(match[1]!);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once("exit", (code) => reject(new Error(`holder exited (${code}) before taking the lock: ${err}`)));
  });
}
