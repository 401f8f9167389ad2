// The server that leads the R3 data bucket dies (SIGKILL) while one gateway holds a trigger lock and
// renews it, and two others keep trying to take it: the lock is neither lost nor doubly held. The holder
// keeps it across the election (its renewals resume on the new leader), no contender gets it meanwhile,
// and once it is released exactly one contender takes it.
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DataStore, type Lock, type LockLost, Locks } from "../../../lib/data/mod.ts";
import type { NatsBus } from "../../../lib/transport/mod.ts";
import { NatsKvBucket } from "../../../lib/transport/mod.ts";
import { eventually, roleBus, startTestTopology, survivalNatsServer, type TestTopology } from "./support.ts";

const LOCK = "deploy.web";
const TTL_MS = 8000;
let topo: TestTopology;
const buses: NatsBus[] = [];

// A sane TTL outlives an election on the newest server, not on 2.9.10 (over 20 s at times).
beforeAll(async () => {
  topo = await startTestTopology({
    gatewayCallerIds: ["choria=ops.mcollective"],
    binary: survivalNatsServer(),
  });
}, 60_000);

afterAll(async () => {
  for (const bus of buses) await bus.close().catch(() => {});
  await topo?.dispose();
});

/** One gateway's locks, over a connection of its own to the whole federation cluster. */
async function gatewayLocks(name: string): Promise<Locks> {
  const { topology } = topo;
  const bus = await roleBus(topology, topology.roles.gateway, topology.federation.urls, name);
  buses.push(bus);
  const bucket = await NatsKvBucket.open(bus.connection, {
    name: topology.buckets.data,
    ttlMs: 3_600_000,
    replicas: 3,
  });
  return new Locks(new DataStore(bucket));
}

it("keeps a held lock through the data bucket leader's death, and never hands it to two", async () => {
  const [holder, second, third] = [
    await gatewayLocks("holder"),
    await gatewayLocks("second"),
    await gatewayLocks("third"),
  ];
  const lock = await holder.acquire(LOCK, { holder: "run-1", ttlMs: TTL_MS, timeoutMs: 0 });
  expect(lock).toBeDefined();
  let lost: LockLost | undefined;
  const renewing = (lock as Lock).keepAlive({ everyMs: 1000, onLost: (err) => (lost = err) });

  // Contenders try all along; any lock they get is a double hold.
  const taken: string[] = [];
  let contending = true;
  const contend = async (locks: Locks, name: string) => {
    while (contending) {
      const got = await locks
        .acquire(LOCK, { holder: name, ttlMs: TTL_MS, timeoutMs: 0 })
        .catch(() => undefined);
      if (got !== undefined) taken.push(`${name} at ${new Date().toISOString()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  const contenders = Promise.all([contend(second, "run-2"), contend(third, "run-3")]);

  const { topology } = topo;
  const observer = await roleBus(topology, topology.roles.gateway, topology.federation.urls, "observer");
  buses.push(observer);
  const jsm = await jetstreamManager(observer.connection, { timeout: 1000 });
  const stream = `KV_${topology.buckets.data}`;
  const victim = (await jsm.streams.info(stream)).cluster?.leader;
  expect(victim).toBeDefined();
  const renewalsBefore = (lock as Lock).renewals;
  const killedAt = Date.now();
  await topo.server(victim as string).kill();
  let newLeader: string | undefined;
  await eventually(
    "a new leader of the data bucket",
    async () => {
      newLeader = await jsm.streams.info(stream).then(
        (info) => info.cluster?.leader,
        () => undefined,
      );
      return newLeader !== undefined && newLeader !== victim;
    },
    30_000,
  );
  const electedMs = Date.now() - killedAt;
  // Two renewals on the new leader.
  await eventually("renewals on the new leader", () => (lock as Lock).renewals >= renewalsBefore + 2, 10_000);
  contending = false;
  await contenders;
  // Shown in the report.
  console.log(
    `killed ${victim} (data bucket leader); new leader ${newLeader} after ${electedMs} ms; renewals ${renewalsBefore} → ${(lock as Lock).renewals}; taken by contenders: ${taken.length}`,
  );

  expect(lost).toBeUndefined();
  expect(renewing.lost.aborted).toBe(false);
  expect(taken).toEqual([]);
  expect((await second.inspect(LOCK))?.holder).toBe("run-1");

  // Released: of two contenders at once, exactly one takes it.
  renewing.stop();
  expect(await (lock as Lock).release()).toBe(true);
  const race = await Promise.all([
    second.acquire(LOCK, { holder: "run-2", ttlMs: TTL_MS, timeoutMs: 0 }),
    third.acquire(LOCK, { holder: "run-3", ttlMs: TTL_MS, timeoutMs: 0 }),
  ]);
  expect(race.filter((got) => got !== undefined)).toHaveLength(1);
}, 90_000);
