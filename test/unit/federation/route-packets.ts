// Generated packets for route(): mostly the requests and replies brokers see, in both dialects, with
// members damaged, reordered, repeated or added, laid out compactly or pretty-printed, and sometimes cut
// or with a byte changed.
import fc from "fast-check";

const RID = "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e";
const REPLY = `mcollective.reply.37bdf08389145a56c13096c178802d3b.${RID}`;
const OWN_HOP = "fb1 (choria_nats_ingest:0, choria_request_transformer:0, choria_nats_egest:0)";
const ABSENT = Symbol("absent");

const junk = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(ABSENT));
// One member in ODDS is damaged or left out.
const ODDS = 30;
function usually<T>(...right: T[]): fc.Arbitrary<T | unknown> {
  return fc.oneof({ weight: ODDS, arbitrary: fc.constantFrom(...right) }, junk);
}

const subject = usually(
  "mcollective.broadcast.agent.rpcutil",
  "mcollective.node.node1.example.net",
  "mcollective.node.node2.example.net",
  "othercorp.node.db1",
  "mcollective.node.*",
  "$SYS.REQ.SERVER.PING",
  REPLY,
);

const v1Hop = fc.oneof(
  {
    weight: ODDS,
    arbitrary: fc.tuple(
      fc.constantFrom("nats://fed:4222", ""),
      fc.constantFrom("client1", "node1", OWN_HOP, "fb1"),
      fc.constantFrom("nats://coll:4222", ""),
    ),
  },
  fc.tuple(fc.constant("nats://fed:4222"), fc.constantFrom("client1", OWN_HOP)),
  junk,
);
const seedHop = usually("client1", "fedbroker_C1_i1", "nats://fed:4222", "node1.example.net");

/** Members in a generated order, some repeated with another value, unknown ones (`__proto__` too) added. */
function members(known: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<[string, unknown][]> {
  const extra = fc.tuple(
    fc.constantFrom("custom", "__proto__", "x-trace", ...Object.keys(known)),
    fc.jsonValue({ maxDepth: 2 }),
  );
  return fc
    .tuple(fc.record(known), fc.array(extra, { maxLength: 2 }), fc.nat(9))
    .chain(([values, extras, withExtras]) => {
      const entries = Object.entries(values).filter(([, value]) => value !== ABSENT);
      if (withExtras === 0) entries.push(...extras);
      return fc.oneof(
        { weight: 3, arbitrary: fc.constant(entries) },
        fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length }),
      );
    });
}

/** JSON text of the members as an object; repeated keys are written twice, as a hostile sender could. */
function objectText(entries: [string, unknown][], indent: string): string {
  const inner = entries.map(
    ([key, value]) =>
      `${JSON.stringify(key)}:${indent}${value === undefined ? "null" : valueText(value, indent)}`,
  );
  return `{${indent}${inner.join(`,${indent}`)}${indent}}`;
}

function valueText(value: unknown, indent: string): string {
  return value instanceof Fields ? objectText(value.entries, indent) : JSON.stringify(value);
}

class Fields {
  constructor(readonly entries: [string, unknown][]) {}
}

function packetText(dialect: "v1" | "seed"): fc.Arbitrary<string> {
  const req = fc.oneof({ weight: 8, arbitrary: fc.constant(RID) }, usually(RID, "", "a".repeat(256)));
  const federation = fc
    .oneof(
      { weight: 3, arbitrary: members({ req, target: fc.array(subject, { minLength: 1, maxLength: 4 }) }) },
      { weight: 3, arbitrary: members({ req, "reply-to": usually(REPLY, "other.node.secret") }) },
      members({
        req,
        "reply-to": fc.oneof(fc.constant(ABSENT), usually(REPLY)),
        target: fc.oneof(fc.constant(ABSENT), fc.array(subject, { maxLength: 3 }), junk),
      }),
    )
    .map((entries) => new Fields(entries));
  const headers = members({
    "reply-to": fc.oneof(
      usually(REPLY, REPLY, REPLY, REPLY, "choria.federation.C1.collective", "$JS.API.X"),
      fc.constant(ABSENT),
    ),
    mc_sender: fc.oneof({ weight: 8, arbitrary: fc.constant("client1") }, usually("client1", "")),
    "seen-by": fc.oneof(
      { weight: ODDS, arbitrary: fc.array(dialect === "v1" ? v1Hop : seedHop, { maxLength: 3 }) },
      junk,
    ),
    federation: fc.oneof({ weight: ODDS, arbitrary: federation }, junk),
  }).map((entries) => new Fields(entries));
  const data = fc.oneof(
    { weight: ODDS, arbitrary: fc.base64String({ maxLength: 40 }) },
    fc.constantFrom('a"b\\/c\u00e9\n', "[[[{{{", "héllo ☃"),
    junk,
  );
  return fc
    .tuple(
      members({
        ...(dialect === "v1" ? { protocol: usually("choria:transport:1") } : {}),
        data,
        headers: fc.oneof({ weight: ODDS, arbitrary: headers }, junk),
      }),
      fc.constantFrom("", "", "", " ", "\n  "),
    )
    .map(([entries, indent]) => objectText(entries, indent));
}

/** Generated packet bytes, now and then cut short or with one byte changed. */
export const routePackets: fc.Arbitrary<Uint8Array> = fc
  .tuple(
    fc.oneof(packetText("v1"), packetText("seed")),
    fc.oneof(
      { weight: ODDS, arbitrary: fc.constant(undefined) },
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })),
    ),
  )
  .map(([text, damage]) => {
    const bytes = new TextEncoder().encode(text);
    if (damage === undefined || bytes.length === 0) return bytes;
    const at = damage[0] % bytes.length;
    if (damage[1] === 0) return bytes.subarray(0, at);
    bytes[at] = damage[1];
    return bytes;
  });
