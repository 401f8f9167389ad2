import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientIdentity, directPacket, signRpcRequest } from "../../../lib/client/request.ts";
import { generateFleet } from "../../../lib/node/fleet.ts";
import { NodeHost } from "../../../lib/node/responder.ts";
import { type NodeService, serveNodes } from "../../../lib/node/service.ts";
import { replySubject } from "../../../lib/protocol/subjects.ts";
import { encodeTransport } from "../../../lib/protocol/transport.ts";
import { collectReplies } from "../../../lib/results/collect-replies.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import { loadSigner } from "../../../lib/security/choria.ts";
import type { MessageBus } from "../../../lib/transport/bus.ts";
import { connectNats } from "../../../lib/transport/node.ts";
import { type NatsServer, startNatsServer } from "../../support/nats-server.ts";
import { testPki } from "../../support/pki.ts";

const FLEET_SIZE = 1000;
let server: NatsServer;
let nodesBus: MessageBus;
let clientBus: MessageBus;
let service: NodeService;
let client: ClientIdentity;
const fleet = generateFleet({ count: FLEET_SIZE, seed: 3 });

beforeAll(async () => {
  const pki = await testPki();
  server = await startNatsServer();
  nodesBus = await connectNats({ servers: server.url, name: "nodes" });
  clientBus = await connectNats({ servers: server.url, name: "client" });
  service = serveNodes(nodesBus, new NodeHost({ fleet, trust: TrustStore.fromPem(pki.caPem) }));
  await nodesBus.flush();
  client = {
    signer: await loadSigner(pki.client),
    callerid: "choria=rip.mcollective",
    senderid: "client.example.net",
  };
});

afterAll(async () => {
  await service?.stop();
  await nodesBus?.close();
  await clientBus?.close();
  await server?.dispose();
});

async function request(
  call: Parameters<typeof signRpcRequest>[1],
  targets: string[] | "broadcast",
  expected: number,
  idleMs?: number,
) {
  const signed = await signRpcRequest(client, call);
  const inbox = replySubject(call.collective, client.callerid, signed.request.envelope.requestid);
  const collection = collectReplies(clientBus, inbox, signed.request.envelope.requestid, {
    expected,
    timeoutMs: 15_000,
    idleMs,
  });
  await collection.ready;
  const body = encodeTransport(directPacket(signed, { replyTo: inbox, sender: client.senderid }));
  if (targets === "broadcast") clientBus.publish(`${call.collective}.broadcast.agent.${call.agent}`, body);
  else for (const subject of targets) clientBus.publish(subject, body);
  return collection.result;
}

describe("member nodes on a real nats-server", () => {
  it(`a broadcast to ${FLEET_SIZE} simulated nodes gets ${FLEET_SIZE} replies, one per node`, async () => {
    const result = await request(
      { collective: "mcollective", agent: "rpcutil", action: "ping" },
      "broadcast",
      FLEET_SIZE,
    );
    expect(result.done).toBe("expected");
    expect(result.duplicates).toBe(0);
    expect(result.invalid).toBe(0);
    expect(new Set(result.replies.map((r) => r.sender))).toEqual(new Set(fleet.map((n) => n.identity)));
    expect(result.replies.every((r) => r.rpc?.statuscode === 0)).toBe(true);
  });

  it("a filtered broadcast is answered by exactly the matching subset, and nobody else", async () => {
    const matching = fleet.filter((n) => n.facts.country === "nl" && n.agents.includes("demo"));
    const result = await request(
      {
        collective: "mcollective",
        agent: "demo",
        action: "echo",
        data: { n: 1 },
        filter: { fact: [{ fact: "country", operator: "==", value: "nl" }] },
      },
      "broadcast",
      matching.length + 1,
      1000,
    );
    // Asking for one reply more than can come lets the collection run until replies stop, so that a
    // node answering outside the filter would be seen.
    expect(result.done).toBe("idle");
    expect(new Set(result.replies.map((r) => r.sender))).toEqual(new Set(matching.map((n) => n.identity)));
  }, 30_000);

  it("directed requests reach only the named nodes", async () => {
    const chosen = fleet.filter((_, i) => i % 7 === 0);
    const result = await request(
      {
        collective: "mcollective",
        agent: "rpcutil",
        action: "inventory",
        filter: { identity: chosen.map((n) => n.identity) },
      },
      chosen.map((n) => `mcollective.node.${n.identity}`),
      chosen.length,
    );
    expect(result.done).toBe("expected");
    expect(result.replies.map((r) => r.sender).sort()).toEqual(chosen.map((n) => n.identity).sort());
    const sample = result.replies[0]!;
    const inventory = sample.rpc?.data as { agents: string[]; facts: Record<string, unknown> };
    expect(inventory.facts).toEqual(fleet.find((n) => n.identity === sample.sender)?.facts);
  });

  // Issue 12: a reply-to of ~5,000 characters made the node's reply exceed nats-server's 4,096-byte
  // control line; the server closed the one connection that carries every hosted node, and the requests
  // in flight on it were lost.
  it("drops a request whose reply-to is too long, and every other request on the connection is answered", async () => {
    const events: string[] = [];
    const off = nodesBus.onEvent((event) => events.push(event.type));
    const dropsBefore = service.stats.dropped.bad_reply_to ?? 0;
    const target = fleet[0]!;
    const hostile = await signRpcRequest(client, {
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
    });
    const longReplyTo = `mcollective.reply.${"a".repeat(32)}.${"x".repeat(5000)}`;
    clientBus.publish(
      `mcollective.node.${target.identity}`,
      encodeTransport(directPacket(hostile, { replyTo: longReplyTo, sender: client.senderid })),
    );
    // In flight beside it: a broadcast to the whole fleet, answered on the same node connection.
    const result = await request(
      { collective: "mcollective", agent: "rpcutil", action: "ping" },
      "broadcast",
      FLEET_SIZE,
    );
    off();
    expect(result.done).toBe("expected");
    expect(result.replies.length).toBe(FLEET_SIZE);
    expect(events.filter((type) => type === "disconnected")).toEqual([]);
    expect((service.stats.dropped.bad_reply_to ?? 0) - dropsBefore).toBe(1);
    // And the connection still carries the next request.
    const after = await request(
      { collective: "mcollective", agent: "rpcutil", action: "ping" },
      [`mcollective.node.${target.identity}`],
      1,
    );
    expect(after.replies.map((r) => r.sender)).toEqual([target.identity]);
  }, 30_000);
});

describe("choria-edge simulate (a real process)", () => {
  let child: ChildProcess | undefined;
  let dir: string;
  afterAll(async () => {
    child?.kill("SIGTERM");
    if (child && child.exitCode === null) await new Promise((resolve) => child!.once("exit", resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it("hosts the requested number of nodes and exits cleanly on SIGTERM", async () => {
    const pki = await testPki();
    dir = await mkdtemp(join(tmpdir(), "choria-edge-simulate-"));
    await writeFile(join(dir, "ca.pem"), pki.caPem);
    const ready = join(dir, "ready");
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "cli/main.ts",
        "simulate",
        "--nodes",
        "250",
        "--offset",
        String(FLEET_SIZE),
        "--per-connection",
        "100",
        "--server",
        server.url,
        "--ca",
        join(dir, "ca.pem"),
        "--ready-file",
        ready,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const deadline = Date.now() + 20_000;
    while (!(await readFile(ready, "utf8").catch(() => "")).startsWith("ready")) {
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`simulate did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const result = await request(
      {
        collective: "mcollective",
        agent: "rpcutil",
        action: "ping",
        filter: { fact: [{ fact: "index", operator: ">=", value: "0" }] },
      },
      "broadcast",
      FLEET_SIZE + 250,
    );
    // The child hosts node1000..node1249, beside the in-process node0000..node0999.
    expect(result.done).toBe("expected");
    expect(result.duplicates).toBe(0);
    const childNodes = generateFleet({ count: 250, seed: 1, offset: FLEET_SIZE }).map((n) => n.identity);
    expect(
      result.replies
        .map((r) => r.sender)
        .filter((s) => childNodes.includes(s))
        .sort(),
    ).toEqual(childNodes.sort());
    const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(stderr).toContain("simulated nodes ready");
  }, 40_000);
});
