import { beforeAll, describe, expect, it } from "vitest";
import { openReply } from "../../../lib/client/replies.ts";
import {
  directPacket,
  federatedPackets,
  signDiscoveryRequest,
  signRpcRequest,
} from "../../../lib/client/request.ts";
import { generateFleet, type NodeIdentity } from "../../../lib/node/fleet.ts";
import { nodeCodec } from "../../../lib/node/node.ts";
import { fillReply, type HandleResult, NodeHost, replyTemplate } from "../../../lib/node/responder.ts";
import { decodeBase64Text, encodeBase64Text } from "../../../lib/protocol/base64.ts";
import { encodeRequest, newRequest } from "../../../lib/protocol/message.ts";
import { decodeSecureRequest, encodeSecureRequest, transportData } from "../../../lib/protocol/secure.ts";
import { broadcastSubject, nodeSubject } from "../../../lib/protocol/subjects.ts";
import {
  decodeTransport,
  encodeTransport,
  newSeedTransport,
  newTransportV1,
} from "../../../lib/protocol/transport.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import { loadSigner, type RequestSigner } from "../../../lib/security/choria.ts";
import { testPki } from "../../support/pki.ts";

const URL_HERE = "nats://127.0.0.1:4222";
const REPLY_TO = "mcollective.reply.37bdf08389145a56c13096c178802d3b.0123456789abcdef0123456789abcdef";

let host: NodeHost;
let fleet: NodeIdentity[];
let client: { signer: RequestSigner; callerid: string; senderid: string };
let gateway: RequestSigner;
let untrusted: RequestSigner;
let expired: RequestSigner;

beforeAll(async () => {
  const pki = await testPki();
  fleet = generateFleet({ count: 9, seed: 7 });
  host = new NodeHost({ fleet, trust: TrustStore.fromPem(pki.caPem) });
  client = {
    signer: await loadSigner(pki.client),
    callerid: "choria=rip.mcollective",
    senderid: "client.example.net",
  };
  gateway = await loadSigner(pki.gateway);
  untrusted = await loadSigner(pki.untrusted);
  expired = await loadSigner(pki.expired);
});

function replies(result: HandleResult) {
  if (!result.ok) throw new Error(`dropped: ${result.reason}: ${result.detail}`);
  return Promise.all(
    result.replies.map(async (reply) => {
      expect(reply.subject).toBe(REPLY_TO);
      const opened = await openReply(reply.body);
      if (!opened.ok) throw opened.error;
      return opened.value;
    }),
  );
}

async function rpc(call: { agent: string; action: string; data?: Record<string, unknown>; filter?: object }) {
  const signed = await signRpcRequest(client, { collective: "mcollective", ...call });
  return encodeTransport(directPacket(signed, { replyTo: REPLY_TO, sender: client.senderid }));
}

describe("NodeHost", () => {
  it("answers a broadcast from every hosted node with the agent, each reply hashed and signed off", async () => {
    const body = await rpc({ agent: "rpcutil", action: "ping" });
    const answers = await replies(
      await host.handle(broadcastSubject("mcollective", "rpcutil"), body, URL_HERE),
    );
    expect(answers.map((a) => a.sender).sort()).toEqual(fleet.map((n) => n.identity).sort());
    for (const answer of answers) {
      expect(answer.rpc?.statuscode).toBe(0);
      expect(answer.rpc?.action).toBe("ping");
      const { pong } = answer.rpc!.data as { pong: number };
      expect(Math.abs(pong - Date.now() / 1000)).toBeLessThan(5);
      expect(answer.transport.headers["seen-by"]).toEqual([[URL_HERE, answer.sender, URL_HERE]]);
    }
  });

  it("applies fact, class and identity filters to select exactly the matching subset", async () => {
    const web = fleet.filter((n) => n.facts.role === "web").map((n) => n.identity);
    const byFact = await rpc({
      agent: "rpcutil",
      action: "ping",
      filter: { fact: [{ fact: "role", operator: "==", value: "web" }] },
    });
    const factAnswers = await replies(
      await host.handle(broadcastSubject("mcollective", "rpcutil"), byFact, URL_HERE),
    );
    expect(factAnswers.map((a) => a.sender).sort()).toEqual(web.sort());

    const byClass = await rpc({ agent: "rpcutil", action: "ping", filter: { cf_class: ["postgresql"] } });
    const classAnswers = await replies(
      await host.handle(broadcastSubject("mcollective", "rpcutil"), byClass, URL_HERE),
    );
    expect(classAnswers.map((a) => a.sender).sort()).toEqual(
      fleet
        .filter((n) => n.classes.includes("postgresql"))
        .map((n) => n.identity)
        .sort(),
    );

    const one = fleet[4]!.identity;
    const byIdentity = await rpc({ agent: "rpcutil", action: "ping", filter: { identity: [one] } });
    const idAnswers = await replies(
      await host.handle(broadcastSubject("mcollective", "rpcutil"), byIdentity, URL_HERE),
    );
    expect(idAnswers.map((a) => a.sender)).toEqual([one]);
  });

  it("only nodes that have an agent answer for it; others do not even listen", async () => {
    const body = await rpc({ agent: "demo", action: "echo", data: { say: "hi <&>" } });
    const answers = await replies(await host.handle(broadcastSubject("mcollective", "demo"), body, URL_HERE));
    const withDemo = fleet.filter((n) => n.agents.includes("demo"));
    expect(withDemo.length).toBeLessThan(fleet.length);
    expect(answers.map((a) => a.sender).sort()).toEqual(withDemo.map((n) => n.identity).sort());
    for (const answer of answers)
      expect(answer.rpc?.data).toEqual({ say: "hi <&>", identity: answer.sender });
  });

  it("reports action failures, unknown actions and unparsable RPC bodies with Choria status codes", async () => {
    const target = fleet[0]!;
    const subject = nodeSubject("mcollective", target.identity);
    const failed = await replies(
      await host.handle(
        subject,
        await rpc({ agent: "demo", action: "fail", data: { message: "disk full" } }),
        URL_HERE,
      ),
    );
    expect(failed.map((a) => [a.sender, a.rpc?.statuscode, a.rpc?.statusmsg])).toEqual([
      [target.identity, 1, "disk full"],
    ]);

    const unknown = await replies(
      await host.handle(subject, await rpc({ agent: "demo", action: "explode" }), URL_HERE),
    );
    expect(unknown[0]?.rpc?.statuscode).toBe(2);

    const missing = await replies(
      await host.handle(subject, await rpc({ agent: "demo", action: "sleep" }), URL_HERE),
    );
    expect(missing[0]?.rpc?.statuscode).toBe(3);

    const request = newRequest({
      agent: "demo",
      collective: "mcollective",
      callerid: client.callerid,
      senderid: "c",
      payload: "{not json",
    });
    const requestJson = encodeRequest(request);
    const secure = encodeSecureRequest(
      requestJson,
      await client.signer.sign(requestJson),
      client.signer.pubcert,
    );
    const body = JSON.stringify({
      protocol: "choria:transport:1",
      data: transportData(secure),
      headers: { "reply-to": REPLY_TO, mc_sender: "c" },
    });
    const invalid = await replies(await host.handle(subject, body, URL_HERE));
    expect(invalid[0]?.rpc?.statuscode).toBe(4);
  });

  it("answers a discovery ping with a bare pong from matching nodes only", async () => {
    const signed = await signDiscoveryRequest(client, {
      collective: "mcollective",
      filter: { fact: [{ fact: "role", operator: "==", value: "db" }] },
    });
    const body = encodeTransport(directPacket(signed, { replyTo: REPLY_TO, sender: client.senderid }));
    const answers = await replies(
      await host.handle(broadcastSubject("mcollective", "discovery"), body, URL_HERE),
    );
    expect(answers.map((a) => a.payload)).toEqual(answers.map(() => "pong"));
    expect(answers.map((a) => a.sender).sort()).toEqual(
      fleet
        .filter((n) => n.facts.role === "db")
        .map((n) => n.identity)
        .sort(),
    );
  });

  it("echoes the federation header and the seen-by hops of a federated request, adding its own hop", async () => {
    const signed = await signRpcRequest(client, {
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
    });
    const [packet] = federatedPackets(signed, [nodeSubject("mcollective", fleet[1]!.identity)], {
      replyTo: REPLY_TO,
      sender: "c",
    });
    // As the broker leaves it: reply-to rewritten, original kept in the federation header, targets gone.
    const brokerHop: [string, string, string] = [
      "nats://fed:4222",
      "fb1 (choria_nats_ingest:0, choria_request_transformer:0, choria_nats_egest:0)",
      URL_HERE,
    ];
    const rewritten = {
      ...packet!,
      headers: {
        ...packet!.headers,
        "reply-to": "choria.federation.C1.collective",
        "seen-by": [brokerHop],
        federation: { req: signed.request.envelope.requestid, "reply-to": REPLY_TO },
      },
    };
    const result = await host.handle(
      nodeSubject("mcollective", fleet[1]!.identity),
      JSON.stringify(rewritten),
      URL_HERE,
    );
    if (!result.ok) throw new Error(result.detail);
    expect(result.replies).toHaveLength(1);
    expect(result.replies[0]!.subject).toBe("choria.federation.C1.collective");
    const reply = decodeTransport(result.replies[0]!.body);
    if (!reply.ok) throw reply.error;
    expect(reply.value.headers.federation).toEqual({
      req: signed.request.envelope.requestid,
      "reply-to": REPLY_TO,
    });
    expect(reply.value.headers["seen-by"]).toEqual([brokerHop, [URL_HERE, fleet[1]!.identity, URL_HERE]]);
  });

  it("answers a seed-dialect request in the seed dialect, seen-by as plain names", async () => {
    const signed = await signRpcRequest(client, {
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
    });
    const seed = {
      data: signed.data,
      headers: {
        "reply-to": "choria.federation.C1.collective",
        mc_sender: "c",
        "seen-by": ["c", "fedbroker_C1_a"],
        federation: { req: signed.request.envelope.requestid, "reply-to": REPLY_TO },
      },
    };
    const result = await host.handle(
      nodeSubject("mcollective", fleet[2]!.identity),
      JSON.stringify(seed),
      URL_HERE,
    );
    if (!result.ok) throw new Error(result.detail);
    const reply = JSON.parse(result.replies[0]!.body);
    expect(reply.protocol).toBeUndefined();
    expect(reply.headers["seen-by"]).toEqual(["c", "fedbroker_C1_a", fleet[2]!.identity]);
    expect(reply.headers.federation["reply-to"]).toBe(REPLY_TO);
  });

  it("lets a privileged certificate sign for any callerid, but not an ordinary one", async () => {
    const privileged = { signer: gateway, callerid: "choria=alice.mcollective", senderid: "gw" };
    const ok = await signRpcRequest(privileged, {
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
      filter: { identity: [fleet[0]!.identity] },
    });
    const okResult = await host.handle(
      broadcastSubject("mcollective", "rpcutil"),
      encodeTransport(directPacket(ok, { replyTo: REPLY_TO, sender: "gw" })),
      URL_HERE,
    );
    expect(okResult.ok && okResult.replies.length).toBe(1);
    expect(okResult.ok && okResult.callerid).toBe("choria=alice.mcollective");

    const impostor = { ...client, callerid: "choria=alice.mcollective" };
    const bad = await signRpcRequest(impostor, {
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
    });
    const badResult = await host.handle(
      broadcastSubject("mcollective", "rpcutil"),
      encodeTransport(directPacket(bad, { replyTo: REPLY_TO, sender: "c" })),
      URL_HERE,
    );
    expect(badResult).toMatchObject({ ok: false, reason: "unauthorised" });
    expect(!badResult.ok && badResult.detail).toMatch(/callerid_mismatch/);
  });

  it("drops requests signed by an untrusted or expired certificate, or whose message was altered", async () => {
    for (const signer of [untrusted, expired]) {
      const signed = await signRpcRequest(
        { signer, callerid: `choria=${signer.certname}`, senderid: "x" },
        { collective: "mcollective", agent: "rpcutil", action: "ping" },
      );
      const result = await host.handle(
        broadcastSubject("mcollective", "rpcutil"),
        encodeTransport(directPacket(signed, { replyTo: REPLY_TO, sender: "x" })),
        URL_HERE,
      );
      expect(result).toMatchObject({ ok: false, reason: "unauthorised" });
    }
    const signed = await signRpcRequest(client, {
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
    });
    const secure = decodeSecureRequest(decodeBase64Text(signed.data)!);
    if (!secure.ok) throw secure.error;
    const altered = { ...secure.value, message: secure.value.message.replace("ping", "inventory") };
    const body = encodeTransport(
      directPacket(
        { ...signed, data: encodeBase64Text(JSON.stringify(altered)) },
        { replyTo: REPLY_TO, sender: "c" },
      ),
    );
    const result = await host.handle(broadcastSubject("mcollective", "rpcutil"), body, URL_HERE);
    expect(result).toMatchObject({ ok: false, reason: "unauthorised" });
    expect(!result.ok && result.detail).toMatch(/bad_signature/);
  });

  it("decodes and checks a directed request once for all the hosted nodes it names, never an altered copy", async () => {
    const own = new NodeHost({ fleet, trust: TrustStore.fromPem((await testPki()).caPem) });
    const body = await rpc({ agent: "rpcutil", action: "ping" });
    const results = await Promise.all(
      fleet.map((node) => own.handle(nodeSubject("mcollective", node.identity), body, URL_HERE)),
    );
    expect(results.every((r) => r.ok && r.replies.length === 1)).toBe(true);
    expect({ decodes: own.decodes, verifications: own.verifications }).toEqual({
      decodes: 1,
      verifications: 1,
    });

    const packet = decodeTransport(body);
    if (!packet.ok) throw packet.error;
    const secure = decodeSecureRequest(decodeBase64Text(packet.value.data)!);
    if (!secure.ok) throw secure.error;
    const altered = { ...secure.value, message: secure.value.message.replace("ping", "inventory") };
    const forged = encodeTransport({ ...packet.value, data: encodeBase64Text(JSON.stringify(altered)) });
    const result = await own.handle(nodeSubject("mcollective", fleet[0]!.identity), forged, URL_HERE);
    expect(result).toMatchObject({ ok: false, reason: "unauthorised" });
    expect({ decodes: own.decodes, verifications: own.verifications }).toEqual({
      decodes: 2,
      verifications: 2,
    });
  });

  it("shares the opened form among interleaved byte copies of two requests, never with a copy one byte apart", async () => {
    let digests = 0;
    const own = new NodeHost({
      fleet,
      trust: TrustStore.fromPem((await testPki()).caPem),
      codec: {
        ...nodeCodec,
        digest: (text) => {
          digests++;
          return nodeCodec.digest(text);
        },
      },
    });
    const bytes = new TextEncoder();
    const first = bytes.encode(await rpc({ agent: "rpcutil", action: "ping" }));
    const second = bytes.encode(await rpc({ agent: "rpcutil", action: "ping" }));
    const results = await Promise.all(
      fleet.flatMap((node) =>
        [first, second].map((body) =>
          own.handle(nodeSubject("mcollective", node.identity), body.slice(), URL_HERE),
        ),
      ),
    );
    expect(results.every((r) => r.ok && r.replies.length === 1)).toBe(true);
    expect((await Promise.all(results.map(replies))).flat()).toHaveLength(2 * fleet.length);
    expect({ decodes: own.decodes, verifications: own.verifications, digests }).toEqual({
      decodes: 2,
      verifications: 2,
      digests: 2 * fleet.length,
    });

    // The same length, one signature character changed: not the bytes seen, so opened and refused.
    const text = new TextDecoder().decode(first);
    const at = text.indexOf('"data":"') + 20;
    const altered = bytes.encode(text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1));
    const result = await own.handle(nodeSubject("mcollective", fleet[0]!.identity), altered, URL_HERE);
    expect(result.ok).toBe(false);
    expect(own.decodes).toBe(3);
  });

  it("makes the same reply bytes with the Node codec as with the portable code", async () => {
    const trust = TrustStore.fromPem((await testPki()).caPem);
    // One clock for both: replies carry the time, which must not tick between the two hosts' answers.
    let at = 0;
    const clock = { now: () => at };
    const portable = new NodeHost({ fleet, trust, clock });
    const native = new NodeHost({ fleet, trust, codec: nodeCodec, clock });
    for (const call of [
      { agent: "rpcutil", action: "inventory" },
      { agent: "demo", action: "echo", data: { text: 'é \u2028 "q"' } },
    ]) {
      const body = await rpc(call);
      at = Date.now();
      const subject = broadcastSubject("mcollective", call.agent);
      const [a, b] = await Promise.all([
        portable.handle(subject, body, URL_HERE),
        native.handle(subject, body, URL_HERE),
      ]);
      expect(a.ok && a.replies.length).toBeGreaterThan(0);
      expect(b).toEqual(a);
    }
  });

  it("fills a reply template to exactly the serialised reply packet, in both dialects", () => {
    const federation = { req: "r1", replyTo: "mcollective.reply.x.1" };
    const requests = [
      newTransportV1({ data: "x", sender: "c", replyTo: REPLY_TO }),
      newTransportV1({ data: "x", sender: "c", seenBy: [["nats://a", "b1", "nats://b"]], federation }),
      newSeedTransport({ data: "x", sender: "c", seenBy: ["b1"], federation }),
      // A header holding a hole's own character: no template, the packet is serialised whole.
      newTransportV1({ data: "x", sender: "c", federation: { req: "r\u0001" } }),
    ];
    for (const request of requests) {
      const template = replyTemplate(request, "nats://127.0.0.1:4222");
      for (const identity of ["node1.example.net", 'odd "né" \\ name']) {
        const whole = { ...template, pieces: undefined };
        expect(fillReply(template, identity, "eyJhIjoxfQ==")).toBe(
          fillReply(whole, identity, "eyJhIjoxfQ=="),
        );
        expect(JSON.parse(fillReply(template, identity, "eyJhIjoxfQ==")).headers.mc_sender).toBe(identity);
      }
    }
    expect(replyTemplate(requests[3]!, "nats://x").pieces).toBeUndefined();
    expect(replyTemplate(requests[1]!, "nats://x").pieces).toBeDefined();
  });

  it("hands out a broadcast's replies in batches, letting the event loop turn between them", async () => {
    const own = new NodeHost({ fleet, trust: TrustStore.fromPem((await testPki()).caPem), replyBatch: 4 });
    const body = await rpc({ agent: "rpcutil", action: "ping" });
    const batches: { size: number; turn: number }[] = [];
    let turn = 0;
    let ticking = setImmediate(function tick() {
      turn++;
      ticking = setImmediate(tick);
    });
    const result = await own.handle(broadcastSubject("mcollective", "rpcutil"), body, URL_HERE, (batch) =>
      batches.push({ size: batch.length, turn }),
    );
    clearImmediate(ticking);
    expect(batches.map((b) => b.size)).toEqual([4, 4]);
    expect(batches[1]!.turn).toBeGreaterThan(batches[0]!.turn);
    expect(result.ok && result.replies.length).toBe(1);
  });

  it("drops expired requests, malformed packets, other protocol versions and requests without reply-to", async () => {
    const subject = broadcastSubject("mcollective", "rpcutil");
    const old = newRequest({
      agent: "rpcutil",
      collective: "mcollective",
      callerid: client.callerid,
      senderid: "c",
      payload: '{"agent":"rpcutil","action":"ping","data":{}}',
      time: Math.floor(Date.now() / 1000) - 120,
    });
    const oldJson = encodeRequest(old);
    const secure = encodeSecureRequest(oldJson, await client.signer.sign(oldJson), client.signer.pubcert);
    const expiredBody = JSON.stringify({
      protocol: "choria:transport:1",
      data: transportData(secure),
      headers: { "reply-to": REPLY_TO, mc_sender: "c" },
    });
    expect(await host.handle(subject, expiredBody, URL_HERE)).toMatchObject({ ok: false, reason: "expired" });

    expect(await host.handle(subject, new Uint8Array([0xff, 0x00, 0x12]), URL_HERE)).toMatchObject({
      ok: false,
      reason: "malformed_transport",
    });
    expect(
      await host.handle(subject, '{"protocol":"io.choria.protocol.v2.transport","data":"e30="}', URL_HERE),
    ).toMatchObject({ ok: false, reason: "unsupported_protocol" });
    expect(
      await host.handle(subject, '{"protocol":"choria:transport:1","data":"e30=","headers":{}}', URL_HERE),
    ).toMatchObject({ ok: false, reason: "no_reply_to" });
    expect(
      await host.handle(
        subject,
        '{"protocol":"choria:transport:1","data":"!!","headers":{"reply-to":"x.reply.y"}}',
        URL_HERE,
      ),
    ).toMatchObject({ ok: false, reason: "malformed_secure_request" });
    expect(await host.handle("other.broadcast.agent.rpcutil", expiredBody, URL_HERE)).toMatchObject({
      ok: false,
      reason: "not_for_this_host",
    });
  });
});

// Issue 12: what a node takes from a request before it answers.
describe("NodeHost and hostile requests", () => {
  const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

  it("drops a transport nested 5,000 levels deep as too_deep", async () => {
    const body = (await rpc({ agent: "rpcutil", action: "ping" })).replace(/}}$/, `,"x":${nested(5000)}}}`);
    const result = await host.handle(nodeSubject("mcollective", fleet[0]!.identity), body, URL_HERE);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toBe("too_deep");
  });

  it("answers a signed request whose RPC data nests 5,000 levels with invalid data, without throwing", async () => {
    const agent = fleet.find((n) => n.agents.includes("demo"))!;
    const signed = await signRpcRequest(client, {
      collective: "mcollective",
      agent: "demo",
      action: "echo",
      data: { placeholder: 1 },
    });
    // Re-signed with the deep value spliced into the RPC JSON, as a hostile signer could send it.
    const request = signed.request;
    const message = request.message.replace('{"placeholder":1}', `{"deep":${nested(5000)}}`);
    const requestJson = encodeRequest({ ...request, message });
    const secure = encodeSecureRequest(
      requestJson,
      await client.signer.sign(requestJson),
      client.signer.pubcert,
    );
    const body = JSON.stringify({
      protocol: "choria:transport:1",
      data: transportData(secure),
      headers: { "reply-to": REPLY_TO, mc_sender: "c" },
    });
    const answers = await replies(
      await host.handle(nodeSubject("mcollective", agent.identity), body, URL_HERE),
    );
    expect(answers.map((a) => a.rpc?.statuscode)).toEqual([4]);
  });

  it.each([
    ["5,000 characters long", `mcollective.reply.${"a".repeat(32)}.${"x".repeat(5000)}`],
    ["more than 64 tokens", `mcollective.reply.h.${Array(70).fill("t").join(".")}`],
    ["a wildcard", "mcollective.reply.>"],
    ["whitespace", "mcollective.reply.a b"],
    ["under $JS.", "$JS.API.STREAM.DELETE.X"],
    ["empty tokens", "mcollective..reply"],
  ])("drops a request whose reply-to is %s as bad_reply_to, publishing nothing", async (_name, replyTo) => {
    const signed = await signRpcRequest(client, {
      collective: "mcollective",
      agent: "rpcutil",
      action: "ping",
    });
    const body = encodeTransport(directPacket(signed, { replyTo, sender: client.senderid }));
    const result = await host.handle(broadcastSubject("mcollective", "rpcutil"), body, URL_HERE);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toBe("bad_reply_to");
    expect(!result.ok && result.detail.length).toBeLessThan(300);
  });
});
