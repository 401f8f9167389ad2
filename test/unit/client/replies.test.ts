import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openReplySync } from "../../../lib/client/mod.ts";
import { encodeBase64Text } from "../../../lib/protocol/base64.ts";

// The cases the collector's own opener was held to before it gave way to openReplySync: what a
// collector stores of each reply, and which replies it refuses.
const digest = (text: string) => createHash("sha256").update(text, "utf8").digest("base64");
const MAX = 1024 * 1024;
const REQUEST_ID = "0123456789abcdef0123456789abcdef";

type Layer = Record<string, unknown>;

/** A reply body built layer by layer; each layer's fields can be replaced, and the hash is made unless given. */
function reply(
  change: {
    transport?: Layer;
    headers?: Layer;
    secure?: Layer;
    reply?: Layer;
    envelope?: Layer;
    rpc?: Layer;
    rpcText?: string;
    data?: (base64: string) => string;
  } = {},
): Uint8Array {
  const rpcText =
    change.rpcText ??
    JSON.stringify({ action: "ping", statuscode: 0, statusmsg: "OK", data: { pong: 1 }, ...change.rpc });
  const message = JSON.stringify({
    protocol: "choria:reply:1",
    message: rpcText,
    envelope: {
      requestid: REQUEST_ID,
      senderid: "node1",
      agent: "rpcutil",
      time: 1_700_000_000,
      ...change.envelope,
    },
    ...change.reply,
  });
  const secure = JSON.stringify({
    protocol: "choria:secure:reply:1",
    message,
    hash: digest(message),
    ...change.secure,
  });
  const base64 = encodeBase64Text(secure);
  return new TextEncoder().encode(
    JSON.stringify({
      protocol: "choria:transport:1",
      data: change.data ? change.data(base64) : base64,
      headers: { mc_sender: "node1", ...change.headers },
      ...change.transport,
    }),
  );
}

/** The reply with its base64 padding taken off (made to need padding by an extra field of the right length). */
function unpadded(): Uint8Array {
  for (const pad of ["", "x", "xx"]) {
    let padded = false;
    const body = reply({
      secure: { pad },
      data: (b) => {
        padded = b.endsWith("=");
        return b.replace(/=+$/, "");
      },
    });
    if (padded) return body;
  }
  throw new Error("no length needs padding");
}

const deep = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

describe("openReplySync", () => {
  it("opens replies of both dialects and their quirks to what a collector stores", () => {
    const ping = { action: "ping", statuscode: 0, statusmsg: "OK" };
    const cases: [Uint8Array, unknown][] = [
      [reply(), { ...ping, data: { pong: 1 } }],
      [
        reply({ rpc: { statuscode: 4, statusmsg: "bad input", data: { error: "x" } } }),
        { action: "ping", statuscode: 4, statusmsg: "bad input", data: { error: "x" } },
      ],
      [reply({ rpc: { data: "{}" } }), { ...ping, data: {} }],
      [reply({ rpc: { data: null } }), { ...ping, data: {} }],
      [reply({ rpcText: JSON.stringify(ping) }), { ...ping, data: {} }],
      [reply({ rpc: { data: { text: "grüße, 日本" } } }), { ...ping, data: { text: "grüße, 日本" } }],
      [
        reply({
          headers: {
            "seen-by": [
              ["a", "b", "c"],
              ["d", "e"],
            ],
            "reply-to": "x.reply.y",
          },
        }),
        undefined,
      ],
      [
        reply({ headers: { federation: { req: "r1", "reply-to": "x.reply.y", target: ["a.b"] } } }),
        undefined,
      ],
      [reply({ transport: { protocol: undefined } }), undefined],
      [reply({ data: (b) => b.replace(/(.{60})/g, "$1\n") }), undefined],
      [reply({ headers: { mc_sender: "" } }), undefined],
      [reply({ transport: { protocol: undefined }, headers: { "seen-by": ["a", "b"] } }), undefined],
    ];
    for (const [body, rpc] of cases) {
      const opened = openReplySync(body, digest, MAX);
      expect(opened.ok, new TextDecoder().decode(body)).toBe(true);
      if (!opened.ok) continue;
      expect(opened.value).toMatchObject({ sender: "node1", requestId: REQUEST_ID, agent: "rpcutil" });
      expect(opened.value.rpc).toEqual(rpc ?? { ...ping, data: { pong: 1 } });
    }
    const pong = openReplySync(reply({ envelope: { agent: "discovery" }, rpcText: "pong" }), digest, MAX);
    expect(pong.ok && pong.value.payload).toBe("pong");
    expect(pong.ok && "rpc" in pong.value).toBe(false);
  });

  it("refuses what a client must not take", () => {
    const cases: Uint8Array[] = [
      new TextEncoder().encode("not json"),
      new TextEncoder().encode(deep(65)),
      reply({ transport: { protocol: "choria:transport:2" } }),
      reply({ transport: { data: 5 } }),
      reply({ transport: { extra: JSON.parse(deep(70)) } }),
      reply({ headers: { "seen-by": [["a", "b", "c", "d"]] } }),
      reply({ headers: { "seen-by": ["a"] } }),
      reply({ headers: { "reply-to": "" } }),
      reply({ headers: { federation: { req: "r".repeat(256) } } }),
      reply({ headers: { federation: { target: [""], req: "r" } } }),
      unpadded(),
      reply({ data: (b) => `${b} ` }),
      reply({ data: (b) => `${b.slice(0, 8)}=${b.slice(9)}` }),
      reply({ data: () => encodeBase64Text("\uFEFF{}") }),
      reply({ secure: { hash: "AAAA" } }),
      reply({ secure: { protocol: "choria:secure:reply:2" } }),
      reply({ secure: { message: "" } }),
      reply({ reply: { protocol: "io.choria.protocol.v2.reply" } }),
      reply({ envelope: { requestid: "short" } }),
      reply({ envelope: { time: 1.5 } }),
      reply({ envelope: { time: 2 ** 60 } }),
      reply({ envelope: { agent: "" } }),
      reply({ envelope: { senderid: 7 } }),
      reply({ rpc: { statuscode: 6 } }),
      reply({ rpc: { statuscode: "0" } }),
      reply({ rpc: { statusmsg: null } }),
      reply({ rpc: { data: JSON.parse(deep(80)) } }),
      reply({ rpcText: "[1]" }),
      reply({ envelope: { agent: "discovery" }, rpcText: "ping" }),
    ];
    for (const body of cases)
      expect(openReplySync(body, digest, MAX).ok, new TextDecoder().decode(body)).toBe(false);
  });

  it("refuses a body over the size limit before reading it", () => {
    const body = reply();
    const opened = openReplySync(body, digest, body.byteLength - 1);
    expect(opened.ok || opened.error.code).toBe("too_large");
  });
});
