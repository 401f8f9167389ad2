import { createHash } from "node:crypto";
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as client from "../../../../lib/client/mod.ts";
import { encodeBase64Text } from "../../../../lib/protocol/base64.ts";
import { openJobReply } from "../../../../lib/results/jobs/open-reply.ts";

// The general decoder, watched: the collector's own path must take the usual reply without it, and hand it
// everything else.
vi.mock("../../../../lib/client/mod.ts", async (original) => {
  const actual = await original<typeof client>();
  return { ...actual, openReplySync: vi.fn(actual.openReplySync) };
});
const general = vi.mocked(client.openReplySync);

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest("base64");
const MAX = 1024 * 1024;

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
      requestid: "0123456789abcdef0123456789abcdef",
      senderid: "node1.example.net",
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
      headers: { mc_sender: "node1.example.net", ...change.headers },
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

/** What the collector uses of an opened reply, or the refusal. */
function outcome(opened: ReturnType<typeof openJobReply>) {
  if (!opened.ok) return { error: opened.error.message, code: opened.error.code };
  const { sender, requestId, payload, hash, rpc } = opened.value;
  return { sender, requestId, payload, hash, rpc };
}

function expectSameAsGeneral(body: Uint8Array) {
  const expected = outcome(client.openReplySync(body, digest, MAX));
  expect(outcome(openJobReply(body, digest, MAX))).toEqual(expected);
}

describe("openJobReply", () => {
  // A function a hook returns is run as its teardown, so this one returns nothing.
  beforeEach(() => {
    general.mockClear();
  });

  it("opens the usual reply without the general decoder, to the values the general decoder gives", () => {
    const cases = [
      reply(),
      reply({ rpc: { statuscode: 4, statusmsg: "bad input", data: { error: "x" } } }),
      reply({ rpc: { data: "{}" } }),
      reply({ rpc: { data: null } }),
      reply({ rpcText: JSON.stringify({ action: "ping", statuscode: 0, statusmsg: "OK" }) }),
      reply({ rpc: { data: { text: "grüße, 日本" } } }),
      reply({
        headers: {
          "seen-by": [
            ["a", "b", "c"],
            ["d", "e"],
          ],
          "reply-to": "x.reply.y",
        },
      }),
      reply({ headers: { federation: { req: "r1", "reply-to": "x.reply.y", target: ["a.b"] } } }),
      reply({ transport: { protocol: undefined } }),
    ];
    for (const body of cases) {
      const opened = outcome(openJobReply(body, digest, MAX));
      expect(general).not.toHaveBeenCalled();
      expect(opened).toEqual(outcome(client.openReplySync(body, digest, MAX)));
      general.mockClear();
    }
  });

  it("hands anything unusual to the general decoder, which takes or refuses it as it always did", () => {
    const cases: Uint8Array[] = [
      // Refused by the general decoder.
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
      // Taken by the general decoder, not by the quick path.
      reply({ data: (b) => b.replace(/(.{60})/g, "$1\n") }),
      reply({ headers: { mc_sender: "" } }),
      reply({ transport: { protocol: undefined }, headers: { "seen-by": ["a", "b"] } }),
      reply({
        envelope: { agent: "discovery" },
        rpcText: "pong",
      }),
    ];
    for (const body of cases) {
      general.mockClear();
      expectSameAsGeneral(body);
      expect(general).toHaveBeenCalled();
    }
  });

  it("leaves a body over the size limit to the general decoder's refusal", () => {
    const body = reply();
    expect(outcome(openJobReply(body, digest, body.byteLength - 1))).toEqual(
      outcome(client.openReplySync(body, digest, body.byteLength - 1)),
    );
  });
});
