// Least privilege in the production-shaped topology, enforced by nats-server: each role connects with its
// own nkey and TLS client certificate through the plain nats.js client (none of our code between it and
// the server), tries what it must not do and is refused by the server (a `-ERR 'Permissions Violation…'`
// and a "Publish/Subscription Violation" line in the server's log naming the role's nkey), while what it
// needs works, across servers of the cluster.
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callerHash, type RoleCredentials } from "../../../infra/topology.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import {
  clusterLog,
  eventually,
  rawConnection,
  serverErrors,
  startTestTopology,
  type TestTopology,
} from "./support.ts";

const GATEWAY_CALLER = "choria=ops.mcollective";
const OTHER_CALLER = "choria=somebody-else.mcollective";
const encoder = new TextEncoder();

let topo: TestTopology;
const open: NatsConnection[] = [];

interface Client {
  nc: NatsConnection;
  errors: string[];
  role: RoleCredentials;
}

/** Connects as `role` to one server of a cluster (`server` picks which), watching the server's errors. */
async function client(role: RoleCredentials, cluster: string, server = 0): Promise<Client> {
  const url =
    cluster === topo.topology.federation.name
      ? topo.topology.federation.urls[server]!
      : topo.topology.members.find((m) => m.cluster === cluster)!.urls[server]!;
  const nc = await rawConnection(topo.topology, role, [url], `${role.role}-${cluster}-${server}`);
  open.push(nc);
  return { nc, errors: serverErrors(nc), role };
}

/** Messages a subscription receives, kept for counting. */
function received(c: Client, subject: string): string[] {
  const subjects: string[] = [];
  c.nc.subscribe(subject, {
    callback: (_err, msg) => {
      subjects.push(msg.subject);
    },
  });
  return subjects;
}

/** The server refused the publish: its error reached the client and its log names the user and subject. */
async function expectPublishRefused(c: Client, subject: string, cluster: string): Promise<void> {
  c.nc.publish(subject, encoder.encode("forbidden"));
  await c.nc.flush();
  await eventually(`publish refusal for ${subject}`, () =>
    c.errors.some((e) => e.includes(`Permissions Violation for Publish to "${subject}"`)),
  );
  await eventually(`server log of the publish violation on ${subject}`, async () => {
    const log = await clusterLog(topo.topology, cluster);
    return loggedViolation(log, "Publish", c.role, subject);
  });
}

async function expectSubscribeRefused(c: Client, subject: string, cluster: string): Promise<void> {
  const sub = c.nc.subscribe(subject);
  await c.nc.flush();
  await eventually(`subscription refusal for ${subject}`, () =>
    c.errors.some((e) => e.includes(`Permissions Violation for Subscription to "${subject}"`)),
  );
  await eventually(`server log of the subscription violation on ${subject}`, async () => {
    const log = await clusterLog(topo.topology, cluster);
    return loggedViolation(log, "Subscription", c.role, subject);
  });
  expect(sub.isClosed()).toBe(true);
}

/**
 * Whether a server logged the violation: 2.9 writes `Publish Violation - Nkey "U…", Subject "s"`, 2.15
 * `"$G/nkey:U…" - Publish Violation - Subject "s"`; both name the user's nkey, the kind and the subject.
 */
function loggedViolation(
  log: string,
  kind: "Publish" | "Subscription",
  role: RoleCredentials,
  subject: string,
) {
  return log
    .split("\n")
    .some(
      (line) =>
        line.includes(`${kind} Violation`) &&
        line.includes(role.publicKey) &&
        line.includes(`Subject "${subject}"`),
    );
}

/** Gives a message that was published time to arrive anywhere, so that "nothing arrived" means something. */
async function settle(...clients: Client[]): Promise<void> {
  await Promise.all(clients.map((c) => c.nc.flush()));
  await new Promise((resolve) => setTimeout(resolve, 200));
}

beforeAll(async () => {
  topo = await startTestTopology({ gatewayCallerIds: [GATEWAY_CALLER] });
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((nc) => nc.close().catch(() => {})));
  await topo?.dispose();
});

describe("gateway (federation cluster)", () => {
  it("publishes into its clusters' federation subjects, which that cluster's brokers receive on another server", async () => {
    const gateway = await client(topo.topology.roles.gateway, "fed", 0);
    const broker = await client(topo.topology.roles.brokers.dc1!, "fed", 2);
    const got = received(broker, "choria.federation.dc1.federation");
    await broker.nc.flush();
    await eventually("subscription routed", async () => {
      gateway.nc.publish("choria.federation.dc1.federation", encoder.encode("request"));
      await gateway.nc.flush();
      return got.length > 0;
    });
    gateway.nc.publish("choria.federation.dc2.federation", encoder.encode("request"));
    await settle(gateway);
    expect(gateway.errors).toEqual([]);
  });

  it("may not forge job replies, reach a collective's request subjects or inject broker replies", async () => {
    const gateway = await client(topo.topology.roles.gateway, "fed", 0);
    const collector = await client(topo.topology.roles.collector, "fed", 1);
    const forged = received(collector, "mcollective.reply.*.edgejob.*");
    await collector.nc.flush();
    const jobReply = `mcollective.reply.${callerHash(OTHER_CALLER)}.edgejob.AAAAAAAAAAAAAAAAAAAAAAAA`;
    await expectPublishRefused(gateway, jobReply, "fed");
    await expectPublishRefused(gateway, "mcollective.broadcast.agent.rpcutil", "fed");
    await expectPublishRefused(gateway, "choria.federation.dc1.collective", "fed");
    await settle(gateway, collector);
    expect(forged).toEqual([]);
  });

  it("subscribes to the replies of its own caller ids only", async () => {
    const gateway = await client(topo.topology.roles.gateway, "fed", 0);
    const broker = await client(topo.topology.roles.brokers.dc1!, "fed", 1);
    const own = `mcollective.reply.${callerHash(GATEWAY_CALLER)}`;
    const replies = received(gateway, `${own}.>`);
    await gateway.nc.flush();
    await eventually("reply routed to the gateway", async () => {
      broker.nc.publish(`${own}.0123456789abcdef0123456789abcdef`, encoder.encode("reply"));
      await broker.nc.flush();
      return replies.length > 0;
    });
    await expectSubscribeRefused(gateway, `mcollective.reply.${callerHash(OTHER_CALLER)}.*`, "fed");
    await expectSubscribeRefused(gateway, "mcollective.reply.>", "fed");
    await expectSubscribeRefused(gateway, "choria.federation.dc1.federation", "fed");
  });

  it("opens its KV buckets with three replicas, and no other bucket", async () => {
    const gateway = await client(topo.topology.roles.gateway, "fed", 2);
    const bucket = await NatsKvBucket.open(gateway.nc, {
      name: topo.topology.buckets.jobs,
      ttlMs: 60_000,
      replicas: 3,
    });
    await bucket.put("probe", "value");
    expect(new TextDecoder().decode((await bucket.get("probe"))!.value)).toBe("value");
    expect((await bucket.replication()).replicas).toBe(3);
    const refused = await NatsKvBucket.open(gateway.nc, { name: "somebody_elses", ttlMs: 60_000 }).then(
      () => "opened",
      (err: unknown) => String(err),
    );
    expect(refused).toMatch(/permissions violation/i);
    const subject = /"(\$JS\.API\.[^"]+)"/.exec(refused)?.[1] ?? "";
    expect(subject).toMatch(/^\$JS\.API\.STREAM\.[A-Z]+\.KV_somebody_elses$/);
    await eventually("the violation in the server log", async () =>
      loggedViolation(await clusterLog(topo.topology, "fed"), "Publish", gateway.role, subject),
    );
  });
});

describe("KV on an R3 bucket (federation cluster)", () => {
  it("reads every write back at once, from whichever server the reader is connected to", async () => {
    const stale: string[] = [];
    for (const server of [0, 1, 2]) {
      const gateway = await client(topo.topology.roles.gateway, "fed", server);
      const bucket = await NatsKvBucket.open(gateway.nc, {
        name: topo.topology.buckets.jobs,
        ttlMs: 60_000,
        replicas: 3,
      });
      for (let i = 0; i < 150; i++) {
        const key = `read-your-write.${server}`;
        await bucket.put(key, String(i));
        const read = await bucket.get(key);
        const value = read === undefined ? "missing" : new TextDecoder().decode(read.value);
        if (value !== String(i)) stale.push(`server ${server} write ${i}: read ${value}`);
      }
    }
    expect(stale).toEqual([]);
  });
});

describe("collector (federation cluster)", () => {
  it("receives job replies the brokers route", async () => {
    const collector = await client(topo.topology.roles.collector, "fed", 0);
    const broker = await client(topo.topology.roles.brokers.dc2!, "fed", 2);
    const got = received(collector, "dc2.reply.*.edgejob.*");
    await collector.nc.flush();
    await eventually("job reply routed", async () => {
      broker.nc.publish(`dc2.reply.${callerHash(GATEWAY_CALLER)}.edgejob.BBBBBBBBBBBBBBBBBBBBBBBB`, "reply");
      await broker.nc.flush();
      return got.length > 0;
    });
    expect(collector.errors).toEqual([]);
  });

  it("may not send requests nor read synchronous replies", async () => {
    const collector = await client(topo.topology.roles.collector, "fed", 1);
    await expectPublishRefused(collector, "choria.federation.dc1.federation", "fed");
    await expectSubscribeRefused(collector, `mcollective.reply.${callerHash(GATEWAY_CALLER)}.*`, "fed");
  });

  it("reads answers on its own inbox only, not on anybody's _INBOX", async () => {
    const collector = await client(topo.topology.roles.collector, "fed", 2);
    await expectSubscribeRefused(collector, "_INBOX.>", "fed");
  });
});

describe("brokers", () => {
  it("cluster dc1 takes its own requests and routes replies into its collective's reply space only", async () => {
    const broker = await client(topo.topology.roles.brokers.dc1!, "fed", 0);
    await expectSubscribeRefused(broker, "choria.federation.dc2.federation", "fed");
    await expectPublishRefused(broker, `dc2.reply.${callerHash(GATEWAY_CALLER)}.0123`, "fed");
    await expectPublishRefused(broker, "choria.federation.dc2.federation", "fed");
  });

  it("on its member cluster publishes requests to its nodes, and reads nothing but its replies", async () => {
    const broker = await client(topo.topology.roles.brokers.dc1!, "dc1", 0);
    const nodes = await client(topo.topology.roles.nodes.mcollective!, "dc1", 2);
    const got = received(nodes, "mcollective.node.>");
    await nodes.nc.flush();
    await eventually("request routed to the nodes", async () => {
      broker.nc.publish("mcollective.node.node1.example.net", "request");
      await broker.nc.flush();
      return got.length > 0;
    });
    await expectSubscribeRefused(broker, "mcollective.broadcast.agent.>", "dc1");
    await expectPublishRefused(broker, "mcollective.reply.abc.0123", "dc1");
  });

  it("is unknown to another cluster's member servers", async () => {
    const dc2 = topo.topology.members.find((m) => m.cluster === "dc2")!;
    await expect(
      rawConnection(topo.topology, topo.topology.roles.brokers.dc1!, dc2.urls, "stray"),
    ).rejects.toThrow(/authorization/i);
  });
});

describe("member nodes", () => {
  it("reply to their brokers", async () => {
    const nodes = await client(topo.topology.roles.nodes.mcollective!, "dc1", 1);
    const broker = await client(topo.topology.roles.brokers.dc1!, "dc1", 2);
    const got = received(broker, "choria.federation.dc1.collective");
    await broker.nc.flush();
    await eventually("reply routed to the broker", async () => {
      nodes.nc.publish("choria.federation.dc1.collective", "reply");
      await nodes.nc.flush();
      return got.length > 0;
    });
    expect(nodes.errors).toEqual([]);
  });

  it("may not send requests to other nodes, nor read other nodes' replies", async () => {
    const nodes = await client(topo.topology.roles.nodes.mcollective!, "dc1", 0);
    await expectPublishRefused(nodes, "mcollective.broadcast.agent.rpcutil", "dc1");
    await expectPublishRefused(nodes, "choria.federation.dc2.collective", "dc1");
    await expectSubscribeRefused(nodes, "choria.federation.dc1.collective", "dc1");
  });
});
