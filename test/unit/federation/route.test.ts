import { readFileSync } from "node:fs";
import { join } from "node:path";
import AjvDraft04 from "ajv-draft-04";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BrokerConfig,
  type BrokerConfigInput,
  brokerConfigFrom,
} from "../../../lib/federation/config.ts";
import type { RefusalReason } from "../../../lib/federation/refusals.ts";
import { type RouteContext, type RouteResult, route } from "../../../lib/federation/route.ts";
import { routePackets } from "./route-packets.ts";

const RID = "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e";
const REPLY = `mcollective.reply.37bdf08389145a56c13096c178802d3b.${RID}`;
// Opaque to the broker; the odd characters check that the string survives untouched.
const DATA = "eyJwcm90b2NvbCI6ImNob3JpYTpzZWN1cmU6cmVxdWVzdDoxIn0+/w==";
const FED = "nats://fed:4222";
const COLL = "nats://coll:4222";
const REQUEST_CTX: RouteContext = { ingestUrl: FED, egestUrl: COLL, worker: 0 };
const REPLY_CTX: RouteContext = { ingestUrl: COLL, egestUrl: FED, worker: 0 };
const REQUEST_HOP = [
  FED,
  "fb1 (choria_nats_ingest:0, choria_request_transformer:0, choria_nats_egest:0)",
  COLL,
];
const REPLY_HOP = [COLL, "fb1 (choria_nats_ingest:0, choria_reply_transformer:0, choria_nats_egest:0)", FED];

function config(overrides: Partial<BrokerConfigInput> = {}): BrokerConfig {
  const parsed = brokerConfigFrom({ cluster: "C1", instance: "i1", identity: "fb1", ...overrides });
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.config;
}

const C1 = config();

// Spec §6.4 step 1: a federated broadcast request as a Go client publishes it.
function step1(): Record<string, unknown> {
  return {
    protocol: "choria:transport:1",
    data: DATA,
    headers: {
      "reply-to": REPLY,
      mc_sender: "client1",
      "seen-by": [[FED, "client1", FED]],
      federation: { req: RID, target: ["mcollective.broadcast.agent.rpcutil"] },
    },
  };
}

// Spec §6.4 step 3: the reply a Choria server publishes for the step-2 request.
function step3(): Record<string, unknown> {
  return {
    protocol: "choria:transport:1",
    data: DATA,
    headers: {
      mc_sender: "node1",
      "seen-by": [[FED, "client1", FED], REQUEST_HOP, [COLL, "node1", COLL]],
      federation: { req: RID, "reply-to": REPLY },
    },
  };
}

function seedRequest(): Record<string, unknown> {
  return {
    data: DATA,
    headers: {
      "reply-to": REPLY,
      mc_sender: "client1",
      "seen-by": ["client1"],
      federation: {
        req: RID,
        target: ["mcollective.node.node1.example.net", "mcollective.node.node2.example.net"],
      },
    },
  };
}

function seedReply(): Record<string, unknown> {
  return {
    data: DATA,
    headers: {
      mc_sender: "node1.example.net",
      "seen-by": ["client1", "fedbroker_C1_i1", "node1.example.net"],
      federation: { req: RID, "reply-to": REPLY },
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: fixtures are reshaped freely, including into invalid packets
type Loose = any;

function mutate(packet: Record<string, unknown>, change: (headers: Record<string, Loose>) => void) {
  change(packet.headers as Record<string, Loose>);
  return packet;
}

function routed(result: RouteResult) {
  if (!result.ok) throw new Error(`refused: ${result.reason}: ${result.detail}`);
  const text = new TextDecoder().decode(result.body);
  return { ...result, text, packet: JSON.parse(text) as Record<string, Loose> };
}

function requestOf(packet: unknown, cfg = C1) {
  return route({ side: "federation", body: JSON.stringify(packet) }, cfg, REQUEST_CTX);
}

function replyOf(packet: unknown, cfg = C1) {
  return route({ side: "collective", body: JSON.stringify(packet) }, cfg, REPLY_CTX);
}

function expectRefused(result: RouteResult, reason: RefusalReason) {
  if (result.ok) throw new Error(`routed to ${result.targets.join(", ")}, expected ${reason}`);
  expect(result.reason).toBe(reason);
  expect(result.detail.length).toBeGreaterThan(0);
}

const ajv = new AjvDraft04.default({ strict: false });
const transportSchema = JSON.parse(
  readFileSync(join(import.meta.dirname, "../../fixtures/choria-schemas/v1/transport.json"), "utf8"),
);
const validTransport = ajv.compile(transportSchema);

describe("request path (federation side to collective)", () => {
  it("rewrites the spec's step-1 request into exactly the step-2 packet", () => {
    const result = routed(requestOf(step1()));
    expect(result.targets).toEqual(["mcollective.broadcast.agent.rpcutil"]);
    expect(result.requestId).toBe(RID);
    expect(result.dialect).toBe("v1");
    const step2 = {
      protocol: "choria:transport:1",
      data: DATA,
      headers: {
        "reply-to": "choria.federation.C1.collective",
        mc_sender: "client1",
        "seen-by": [[FED, "client1", FED], REQUEST_HOP],
        federation: { req: RID, "reply-to": REPLY },
      },
    };
    expect(result.text).toBe(JSON.stringify(step2));
    expect(validTransport(result.packet), JSON.stringify(validTransport.errors)).toBe(true);
  });

  it("passes data through as the very same string", () => {
    const body = JSON.stringify(step1());
    const result = routed(
      route({ side: "federation", body: new TextEncoder().encode(body) }, C1, REQUEST_CTX),
    );
    expect(result.packet.data).toBe(DATA);
    expect(result.text).toContain(`"data":"${DATA}"`);
  });

  it("publishes one copy per distinct target, directed requests included", () => {
    const packet = mutate(step1(), (h) => {
      h.federation.target = [
        "mcollective.node.node1.example.net",
        "mcollective.node.node2.example.net",
        "mcollective.node.node1.example.net",
      ];
    });
    const result = routed(requestOf(packet));
    expect(result.targets).toEqual([
      "mcollective.node.node1.example.net",
      "mcollective.node.node2.example.net",
    ]);
    expect(result.packet.headers.federation.target).toBeUndefined();
  });

  it("keeps unknown header and federation keys", () => {
    const packet = mutate(step1(), (h) => {
      h.custom = "kept";
      h.federation.extra = 1;
    });
    const result = routed(requestOf(packet));
    expect(result.packet.headers.custom).toBe("kept");
    expect(result.packet.headers.federation.extra).toBe(1);
  });

  it("records the worker index in every stage name", () => {
    const result = routed(
      route({ side: "federation", body: JSON.stringify(step1()) }, C1, { ...REQUEST_CTX, worker: 3 }),
    );
    expect(result.packet.headers["seen-by"][1][1]).toBe(
      "fb1 (choria_nats_ingest:3, choria_request_transformer:3, choria_nats_egest:3)",
    );
  });

  it("starts seen-by when the client recorded none", () => {
    const packet = mutate(step1(), (h) => {
      delete h["seen-by"];
    });
    expect(routed(requestOf(packet)).packet.headers["seen-by"]).toEqual([REQUEST_HOP]);
  });

  it("allows targets matching an allow-listed subject pattern outside the listed collectives", () => {
    const cfg = config({
      collectives: ["acme"],
      // The replies of requests into mcollective come back in mcollective's reply namespace.
      replyCollectives: ["acme", "mcollective"],
      allowSubjects: ["mcollective.broadcast.agent.*", "other.node.>"],
    });
    const broadcast = requestOf(step1(), cfg);
    expect(broadcast.ok).toBe(true);
    const node = requestOf(
      mutate(step1(), (h) => (h.federation.target = ["other.node.a.b.c"])),
      cfg,
    );
    expect(node.ok).toBe(true);
    expectRefused(
      requestOf(
        mutate(step1(), (h) => (h.federation.target = ["mcollective.node.n1"])),
        cfg,
      ),
      "target_not_allowed",
    );
  });
});

describe("reply path (collective side to federation)", () => {
  it("rewrites the spec's step-3 reply into exactly the step-4 packet", () => {
    const result = routed(replyOf(step3()));
    expect(result.targets).toEqual([REPLY]);
    expect(result.requestId).toBe(RID);
    const step4 = {
      protocol: "choria:transport:1",
      data: DATA,
      headers: {
        mc_sender: "node1",
        "seen-by": [[FED, "client1", FED], REQUEST_HOP, [COLL, "node1", COLL], REPLY_HOP],
      },
    };
    expect(result.text).toBe(JSON.stringify(step4));
    expect(validTransport(result.packet), JSON.stringify(validTransport.errors)).toBe(true);
  });

  it("routes a reply back through a different instance than its request", () => {
    const other = config({ identity: "fb2", instance: "i2" });
    const result = routed(replyOf(step3(), other));
    expect(result.packet.headers["seen-by"].at(-1)[1]).toContain("fb2 (");
  });
});

describe("seed dialect", () => {
  it("appends the Ruby broker's name to seen-by and keeps the dialect on a request", () => {
    const result = routed(requestOf(seedRequest()));
    expect(result.dialect).toBe("seed");
    expect(result.packet).toEqual({
      data: DATA,
      headers: {
        "reply-to": "choria.federation.C1.collective",
        mc_sender: "client1",
        "seen-by": ["client1", "fedbroker_C1_i1"],
        federation: { req: RID, "reply-to": REPLY },
      },
    });
    expect(result.packet.protocol).toBeUndefined();
    expect(result.targets).toHaveLength(2);
  });

  it("records the connected server first when route recording is on", () => {
    const result = routed(requestOf(seedRequest(), config({ recordRoute: true })));
    expect(result.packet.headers["seen-by"]).toEqual(["client1", FED, "fedbroker_C1_i1"]);
  });

  it("routes a reply to its federation reply-to without the federation header", () => {
    const result = routed(replyOf(seedReply()));
    expect(result.targets).toEqual([REPLY]);
    expect(result.packet).toEqual({
      data: DATA,
      headers: {
        mc_sender: "node1.example.net",
        "seen-by": ["client1", "fedbroker_C1_i1", "node1.example.net", "fedbroker_C1_i1"],
      },
    });
  });
});

type Case = {
  name: string;
  reason: RefusalReason;
  v1?: () => unknown;
  seed?: () => unknown;
  side: "federation" | "collective";
  cfg?: BrokerConfig;
};

const tooMany = Array.from({ length: 11 }, (_, i) => `mcollective.node.n${i}`);
const cases: Case[] = [
  {
    name: "a request without federation header",
    reason: "not_federated",
    side: "federation",
    v1: () => mutate(step1(), (h) => delete h.federation),
    seed: () => mutate(seedRequest(), (h) => delete h.federation),
  },
  {
    name: "a reply without federation header",
    reason: "not_federated",
    side: "collective",
    v1: () => mutate(step3(), (h) => delete h.federation),
    seed: () => mutate(seedReply(), (h) => delete h.federation),
  },
  {
    name: "empty targets",
    reason: "no_targets",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h.federation.target = [])),
    seed: () => mutate(seedRequest(), (h) => (h.federation.target = [])),
  },
  {
    name: "missing targets",
    reason: "no_targets",
    side: "federation",
    v1: () => mutate(step1(), (h) => delete h.federation.target),
    seed: () => mutate(seedRequest(), (h) => delete h.federation.target),
  },
  {
    name: "more targets than allowed",
    reason: "too_many_targets",
    side: "federation",
    cfg: config({ maxTargets: 10 }),
    v1: () => mutate(step1(), (h) => (h.federation.target = tooMany)),
    seed: () => mutate(seedRequest(), (h) => (h.federation.target = tooMany)),
  },
  {
    name: "a request without reply-to",
    reason: "no_reply_to",
    side: "federation",
    v1: () => mutate(step1(), (h) => delete h["reply-to"]),
    seed: () => mutate(seedRequest(), (h) => delete h["reply-to"]),
  },
  {
    name: "a reply without federation.reply-to",
    reason: "no_reply_to",
    side: "collective",
    v1: () => mutate(step3(), (h) => delete h.federation["reply-to"]),
    seed: () => mutate(seedReply(), (h) => delete h.federation["reply-to"]),
  },
  {
    name: "a request whose reply-to is a federation subject",
    reason: "bad_reply_to",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h["reply-to"] = "choria.federation.C2.federation")),
    seed: () => mutate(seedRequest(), (h) => (h["reply-to"] = "mcollective.broadcast.agent.rpcutil")),
  },
  {
    name: "a reply whose federation.reply-to is a node subject",
    reason: "bad_reply_to",
    side: "collective",
    v1: () => mutate(step3(), (h) => (h.federation["reply-to"] = "other.node.secret")),
    seed: () => mutate(seedReply(), (h) => (h.federation["reply-to"] = "mcollective.reply.>")),
  },
  {
    name: "a wildcard target",
    reason: "bad_target",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h.federation.target = ["mcollective.broadcast.agent.>"])),
    seed: () => mutate(seedRequest(), (h) => (h.federation.target = ["mcollective.node.*"])),
  },
  {
    name: "a federation subject as target",
    reason: "bad_target",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h.federation.target = ["choria.federation.C2.federation"])),
    seed: () => mutate(seedRequest(), (h) => (h.federation.target = ["choria.federation.C1.collective"])),
  },
  {
    name: "a reply or service subject as target",
    reason: "bad_target",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h.federation.target = [REPLY])),
    seed: () => mutate(seedRequest(), (h) => (h.federation.target = ["mcollective.broadcast.service.x"])),
  },
  {
    name: "a malformed target",
    reason: "bad_target",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h.federation.target = ["mcollective..node"])),
    seed: () => mutate(seedRequest(), (h) => (h.federation.target = ["mcollective.node.a b"])),
  },
  {
    name: "a target in another collective",
    reason: "target_not_allowed",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h.federation.target = ["othercorp.broadcast.agent.rpcutil"])),
    seed: () => mutate(seedRequest(), (h) => h.federation.target.push("othercorp.node.db1")),
  },
  {
    name: "a request that already passed this broker",
    reason: "loop",
    side: "federation",
    v1: () => mutate(step1(), (h) => h["seen-by"].push(REQUEST_HOP)),
    seed: () => mutate(seedRequest(), (h) => h["seen-by"].push("fedbroker_C1_i1")),
  },
  {
    name: "a reply that already passed this broker twice",
    reason: "loop",
    side: "collective",
    v1: () => mutate(step3(), (h) => h["seen-by"].push(REPLY_HOP)),
    seed: () => mutate(seedReply(), (h) => h["seen-by"].push("fedbroker_C1_i1")),
  },
  {
    name: "a request at the hop limit",
    reason: "too_many_hops",
    side: "federation",
    cfg: config({ maxHops: 3 }),
    v1: () => mutate(step1(), (h) => h["seen-by"].push([FED, "x", FED], [FED, "y", FED])),
    seed: () => mutate(seedRequest(), (h) => h["seen-by"].push("x", "y")),
  },
  {
    name: "a reply at the hop limit",
    reason: "too_many_hops",
    side: "collective",
    cfg: config({ maxHops: 3 }),
    v1: () => step3(),
    seed: () => seedReply(),
  },
  {
    name: "a request still naming targets on the collective side",
    reason: "request_on_collective_side",
    side: "collective",
    v1: () => mutate(step3(), (h) => (h.federation.target = ["mcollective.broadcast.agent.rpcutil"])),
    seed: () => mutate(seedReply(), (h) => (h.federation.target = ["mcollective.node.x"])),
  },
  {
    name: "a rewritten request fed back into the federation side",
    reason: "reply_on_federation_side",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h.federation["reply-to"] = REPLY)),
    seed: () => mutate(seedRequest(), (h) => (h.federation["reply-to"] = REPLY)),
  },
  {
    name: "a packet over the size limit",
    reason: "too_large",
    side: "federation",
    cfg: config({ maxBytes: 200 }),
    v1: () => ({ ...step1(), data: "A".repeat(400) }),
    seed: () => ({ ...seedRequest(), data: "A".repeat(400) }),
  },
  {
    name: "wrong types in the headers",
    reason: "malformed",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h["reply-to"] = 42)),
    seed: () => mutate(seedRequest(), (h) => (h["seen-by"] = [["a", "b", "c"]])),
  },
  {
    name: "a non-string data field",
    reason: "malformed",
    side: "collective",
    v1: () => ({ ...step3(), data: { nested: true } }),
    seed: () => ({ ...seedReply(), data: 12 }),
  },
  {
    name: "a target that is not a string",
    reason: "malformed",
    side: "federation",
    v1: () => mutate(step1(), (h) => (h.federation.target = [7])),
    seed: () => mutate(seedRequest(), (h) => (h.federation.target = "x")),
  },
];

describe("refusals", () => {
  for (const c of cases) {
    for (const dialect of ["v1", "seed"] as const) {
      const build = c[dialect];
      if (build === undefined) continue;
      it(`refuses ${c.name} (${dialect}) as ${c.reason}`, () => {
        const ctx = c.side === "federation" ? REQUEST_CTX : REPLY_CTX;
        expectRefused(route({ side: c.side, body: JSON.stringify(build()) }, c.cfg ?? C1, ctx), c.reason);
      });
    }
  }

  it("reports the request id of a refused packet when it could read one", () => {
    const result = requestOf(
      mutate(step1(), (h) => (h.federation.target = ["choria.federation.C2.federation"])),
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.requestId).toBe(RID);
  });

  it.each([
    ["not JSON", "{not json"],
    ["a JSON array", "[1,2,3]"],
    ["JSON null", "null"],
    ["a JSON string", '"hello"'],
    ["an object without headers", '{"data":"x"}'],
    ["empty input", ""],
  ])("refuses %s as malformed", (_name, body) => {
    expectRefused(route({ side: "federation", body }, C1, REQUEST_CTX), "malformed");
    expectRefused(route({ side: "collective", body }, C1, REPLY_CTX), "malformed");
  });

  it("refuses binary garbage as malformed", () => {
    const garbage = new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x22, 0xc3, 0x28]);
    expectRefused(route({ side: "federation", body: garbage }, C1, REQUEST_CTX), "malformed");
  });

  it("refuses a v2 transport as unsupported_protocol", () => {
    const v2 = { protocol: "io.choria.protocol.v2.transport", data: DATA, headers: { reply: REPLY } };
    expectRefused(requestOf(v2), "unsupported_protocol");
    expectRefused(replyOf({ ...step3(), protocol: "choria:transport:2" }), "unsupported_protocol");
  });

  it("refuses a huge target array before validating it", () => {
    const cfg = config({ maxTargets: 10_000 });
    const targets = Array.from({ length: 200_000 }, () => 7);
    expectRefused(
      requestOf(
        mutate(step1(), (h) => (h.federation.target = targets)),
        cfg,
      ),
      "too_many_targets",
    );
  });

  it("never throws, whatever the bytes", () => {
    for (let n = 0; n < 500; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(1 + (n % 64)));
      const result = route({ side: n % 2 ? "federation" : "collective", body: bytes }, C1, REQUEST_CTX);
      expect(result.ok).toBe(false);
    }
  });
});

describe("data passes through byte for byte", () => {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  function dataBytesOf(text: string): string {
    const start = text.indexOf('"data"');
    const open = text.indexOf('"', text.indexOf(":", start)) + 1;
    let end = open;
    while (text[end] !== '"' || text[end - 1] === "\\") end++;
    return text.slice(open, end);
  }

  it.each([
    ["base64 wrapped by Ruby at 60 columns", `${"QUJD".repeat(15)}\\n${"QUJD".repeat(5)}\\n`],
    ["escaped slashes", "YWJj\\/ZGVm"],
    ["an escaped quote and unicode escapes", 'a\\"b\\u00e9c'],
    ["raw non-ASCII text", "héllo ☃"],
  ])("keeps %s exactly as received", (_name, rawData) => {
    const text = JSON.stringify(step1()).replace(`"data":"${DATA}"`, `"data":"${rawData}"`);
    const direct = route({ side: "federation", body: encoder.encode(text) }, C1, REQUEST_CTX);
    const out = routed(direct);
    expect(dataBytesOf(out.text)).toBe(rawData);
    expect(out.packet.data).toBe(JSON.parse(`"${rawData}"`));
  });

  it("reads pretty-printed packets and keeps unknown top-level members", () => {
    const text = JSON.stringify({ ...step1(), trailer: { x: [1, 2] } }, null, 2);
    const out = routed(route({ side: "federation", body: encoder.encode(text) }, C1, REQUEST_CTX));
    expect(out.packet.data).toBe(DATA);
    expect(out.packet.trailer).toEqual({ x: [1, 2] });
    expect(Object.keys(out.packet)).toEqual(["protocol", "data", "headers", "trailer"]);
  });

  it("refuses a packet with two data members as malformed", () => {
    const text = JSON.stringify(step1()).replace(`"data":"${DATA}"`, `"data":"QUJD","data":"${DATA}"`);
    expectRefused(route({ side: "federation", body: text }, C1, REQUEST_CTX), "malformed");
  });

  it("refuses data with a raw control character or invalid UTF-8 as malformed", () => {
    const control = JSON.stringify(step1()).replace(`"data":"${DATA}"`, `"data":"QU\tJD"`);
    expectRefused(route({ side: "federation", body: control }, C1, REQUEST_CTX), "malformed");
    const bytes = encoder.encode(JSON.stringify(step1()));
    const at = decoder.decode(bytes).indexOf(DATA);
    bytes[at + 2] = 0xff;
    expectRefused(route({ side: "federation", body: bytes }, C1, REQUEST_CTX), "malformed");
  });

  it("refuses a truncated packet as malformed", () => {
    const text = JSON.stringify(step1());
    for (const cut of [1, 20, 45, text.length - 1]) {
      expectRefused(route({ side: "federation", body: text.slice(0, cut) }, C1, REQUEST_CTX), "malformed");
    }
  });
});

// Issue 12: a header holding an array nested 5,000 levels deep threw from the re-serialisation (the stack
// overflowed), so the packet was neither routed nor refused nor counted.
describe("deeply nested packets", () => {
  const deep = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;
  // Built as text: the engine's own JSON.stringify is what overflows on such values.
  const withDeepHeader = (packet: Record<string, unknown>, levels: number) =>
    JSON.stringify(packet).replace(/}}$/, `,"x-deep":${deep(levels)}}}`);

  it("refuses a request or reply with a header nested 5,000 levels deep as too_deep, on both paths", () => {
    for (const [side, packet, ctx] of [
      ["federation", step1(), REQUEST_CTX],
      ["collective", step3(), REPLY_CTX],
      ["federation", seedRequest(), REQUEST_CTX],
      ["collective", seedReply(), REPLY_CTX],
    ] as const) {
      const body = withDeepHeader(packet, 5000);
      expect(body.length).toBeGreaterThan(10_000);
      expectRefused(route({ side, body }, C1, ctx), "too_deep");
    }
  });

  it("refuses it as too_deep when data is not plain base64 and the whole packet is parsed", () => {
    // Data that is not plain base64 sends the packet down the full parse, not the data-skipping one.
    const body = withDeepHeader({ ...step1(), data: "not base64!" }, 5000);
    expectRefused(route({ side: "federation", body }, C1, REQUEST_CTX), "too_deep");
  });

  it("routes a header nested 64 levels deep and refuses 65", () => {
    const inner = (levels: number) => withDeepHeader(step1(), levels);
    // The outer object and headers are two levels; the header value adds the rest.
    expect(route({ side: "federation", body: inner(62) }, C1, REQUEST_CTX).ok).toBe(true);
    expectRefused(route({ side: "federation", body: inner(63) }, C1, REQUEST_CTX), "too_deep");
  });

  it("leaves brackets inside data alone", () => {
    const packet = { ...step1(), data: "[".repeat(10_000) };
    expect(requestOf(packet).ok).toBe(true);
  });
});

// Issue 12: reply-to into another member collective's reply namespace, or into NATS's `$` namespaces.
describe("reply namespaces", () => {
  it("refuses a request whose reply-to is under $JS., $KV. or $SYS. as reserved_subject", () => {
    for (const replyTo of ["$JS.API.STREAM.DELETE.X", "$KV.bucket.key", "$SYS.REQ.SERVER.PING"]) {
      expectRefused(requestOf(mutate(step1(), (h) => (h["reply-to"] = replyTo))), "reserved_subject");
      expectRefused(
        replyOf(mutate(step3(), (h) => (h.federation["reply-to"] = replyTo))),
        "reserved_subject",
      );
    }
    // A reply subject shape does not make a $ collective acceptable.
    expectRefused(
      requestOf(mutate(step1(), (h) => (h["reply-to"] = `$JS.reply.x.${RID}`))),
      "reserved_subject",
    );
  });

  it("refuses $-prefixed targets even where an allow-list pattern would match them", () => {
    const cfg = config({ allowSubjects: ["$SYS.>", "*.node.>"] });
    expectRefused(
      requestOf(
        mutate(step1(), (h) => (h.federation.target = ["$SYS.node.x"])),
        cfg,
      ),
      "reserved_subject",
    );
  });

  it("refuses a reply-to in the reply namespace of a collective the cluster does not serve", () => {
    const other = `othercoll.reply.37bdf08389145a56c13096c178802d3b.${RID}`;
    expectRefused(requestOf(mutate(step1(), (h) => (h["reply-to"] = other))), "reply_not_allowed");
    expectRefused(replyOf(mutate(step3(), (h) => (h.federation["reply-to"] = other))), "reply_not_allowed");
    expectRefused(requestOf(mutate(seedRequest(), (h) => (h["reply-to"] = other))), "reply_not_allowed");
  });

  it("takes reply collectives from --reply-collectives, by default the cluster's --collectives", () => {
    const other = `othercoll.reply.37bdf08389145a56c13096c178802d3b.${RID}`;
    const served = config({ collectives: ["mcollective", "othercoll"] });
    expect(
      requestOf(
        mutate(step1(), (h) => (h["reply-to"] = other)),
        served,
      ).ok,
    ).toBe(true);
    const narrowed = config({ collectives: ["mcollective", "othercoll"], replyCollectives: ["mcollective"] });
    expectRefused(
      requestOf(
        mutate(step1(), (h) => (h["reply-to"] = other)),
        narrowed,
      ),
      "reply_not_allowed",
    );
    expect(requestOf(step1(), narrowed).ok).toBe(true);
  });

  it("refuses over-long reply-to and targets, and subjects of more than 64 tokens", () => {
    const long = `mcollective.reply.37bdf08389145a56c13096c178802d3b.${"a".repeat(5000)}`;
    expectRefused(requestOf(mutate(step1(), (h) => (h["reply-to"] = long))), "bad_reply_to");
    expectRefused(replyOf(mutate(step3(), (h) => (h.federation["reply-to"] = long))), "bad_reply_to");
    const manyTokens = `mcollective.reply.h.${Array(70).fill("a").join(".")}`;
    expectRefused(requestOf(mutate(step1(), (h) => (h["reply-to"] = manyTokens))), "bad_reply_to");
    expectRefused(
      requestOf(mutate(step1(), (h) => (h.federation.target = [`mcollective.node.${"n".repeat(5000)}`]))),
      "bad_target",
    );
  });
});

// Packets of the usual layout are read from their headers member alone; any other member sends the packet
// down the whole parse. Both must give the same answer, and the same bytes with that member kept.
describe("the headers-only read and the whole parse agree", () => {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const cfg = config({ maxHops: 4, maxTargets: 3, allowSubjects: ["othercorp.node.>"] });
  const EXTRA = ',"zz-extra":0';

  it("on generated packets, routed or refused, on either side", () => {
    let routedCount = 0;
    fc.assert(
      fc.property(routePackets, (bytes) => {
        let text: string;
        let parsed: unknown;
        try {
          text = decoder.decode(bytes);
          parsed = JSON.parse(text);
        } catch {
          return;
        }
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return;
        if (Object.keys(parsed).length === 0) return;
        const withExtra = text.replace(/}\s*$/, `${EXTRA}}`);
        for (const side of ["federation", "collective"] as const) {
          const ctx = side === "federation" ? REQUEST_CTX : REPLY_CTX;
          const usual = route({ side, body: bytes }, cfg, ctx);
          const whole = route({ side, body: withExtra }, cfg, ctx);
          if (!usual.ok) {
            expect(whole).toEqual(usual);
            continue;
          }
          routedCount++;
          const out = decoder.decode(usual.body);
          expect({ ...whole, body: decoder.decode(whole.ok ? whole.body : undefined) }).toEqual({
            ...usual,
            body: `${out.slice(0, -1)}${EXTRA}}`,
          });
        }
      }),
      { numRuns: 5000 },
    );
    expect(routedCount).toBeGreaterThan(200);
  });
});
