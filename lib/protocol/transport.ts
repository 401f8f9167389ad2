import * as z from "zod/mini";
import { type Decoded, fail, ok } from "./errors.ts";
import { fieldPath, parseJson } from "./json.ts";
import { checkTransport, TRANSPORT_V1, transportDialect } from "./transport-check.ts";

/**
 * The two transport dialects on the wire:
 * - "v1": `choria:transport:1` as go-choria emits it; seen-by hops are [in, processor, out] triples.
 * - "seed": the 2017 mcollective-choria packet, with no `protocol` field and seen-by a flat list of names.
 */
export type TransportDialect = "v1" | "seed";

// Go's request ids are 32 lower-case hex characters and Choria's v1 schema pins that length, but
// go-choria's federation broker routes any id (its code never checks the schema), so decoding accepts
// any non-empty id of sane length, as it does. Clients here still make 32-hex ids.
const requestIdV1 = z.string().check(z.minLength(1), z.maxLength(255));
const subjectText = z.string().check(z.minLength(1));

const federationV1 = z.looseObject({
  req: requestIdV1,
  "reply-to": z.optional(subjectText),
  target: z.optional(z.array(subjectText)),
});

const federationSeed = z.looseObject({
  req: z.optional(z.string().check(z.minLength(1))),
  "reply-to": z.optional(subjectText),
  target: z.optional(z.array(subjectText)),
});

/**
 * One hop: [in, processor, out]. Go decodes a hop into a fixed three-element array, so a two-element hop
 * from an older or hand-written client is read with an empty third element; so it is here.
 */
const seenByHopSchema = z.pipe(
  z.union([z.tuple([z.string(), z.string(), z.string()]), z.tuple([z.string(), z.string()])]),
  z.transform((hop): [string, string, string] => (hop.length === 3 ? hop : [hop[0], hop[1], ""])),
);

const transportV1Schema = z.looseObject({
  protocol: z.literal(TRANSPORT_V1),
  data: z.string(),
  headers: z.looseObject({
    "reply-to": z.optional(subjectText),
    // go-choria routes a packet whose sender is empty; only the nodes care who sent it.
    mc_sender: z.optional(z.string()),
    "seen-by": z.optional(z.array(seenByHopSchema)),
    federation: z.optional(federationV1),
  }),
});

const seedTransportSchema = z.looseObject({
  data: z.string(),
  headers: z.looseObject({
    "reply-to": z.optional(subjectText),
    mc_sender: z.optional(z.string().check(z.minLength(1))),
    "seen-by": z.optional(z.array(z.string())),
    federation: z.optional(federationSeed),
  }),
});

export type SeenByHop = z.infer<typeof seenByHopSchema>;
export type TransportV1 = z.infer<typeof transportV1Schema>;
export type SeedTransport = z.infer<typeof seedTransportSchema>;
export type TransportPacket = TransportV1 | SeedTransport;
type FederationHeader = NonNullable<TransportPacket["headers"]["federation"]>;

export interface DecodeTransportOptions {
  /** Refuse bodies larger than this many bytes before parsing them. */
  maxBytes?: number;
}

/** Parses a NATS message body into a transport packet of either dialect. Never throws. */
export function decodeTransport(
  input: string | Uint8Array,
  options: DecodeTransportOptions = {},
): Decoded<TransportPacket> {
  const parsed = parseJson("transport", input, options.maxBytes);
  if (!parsed.ok) return parsed;
  return checkTransport(parsed.value);
}

/**
 * Checks an already-parsed value against the transport schemas of both dialects. The schemas are the
 * reference: decoding runs checkTransport, the same rules by hand, held to this by a property test.
 */
export function validateTransport(value: unknown): Decoded<TransportPacket> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return fail("transport", "invalid_field", "", "expected a JSON object");
  }
  const dialect = transportDialect((value as { protocol?: unknown }).protocol);
  if (!dialect.ok) return dialect;
  const schema = dialect.value === "seed" ? seedTransportSchema : transportV1Schema;
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    return fail("transport", "invalid_field", fieldPath(issue.path), issue.message);
  }
  return ok(result.data as TransportPacket);
}

export function dialectOf(packet: TransportPacket): TransportDialect {
  return "protocol" in packet && packet.protocol === TRANSPORT_V1 ? "v1" : "seed";
}

export function isV1(packet: TransportPacket): packet is TransportV1 {
  return dialectOf(packet) === "v1";
}

/** Serialises a packet for NATS. Field order follows the object, as Go's follows its struct. */
export function encodeTransport(packet: TransportPacket): string {
  return JSON.stringify(packet);
}

export interface NewTransportOptions {
  /** Base64 of the secure request or reply JSON. */
  data: string;
  sender: string;
  replyTo?: string;
  seenBy?: SeenByHop[];
  federation?: { req: string; replyTo?: string; target?: string[] };
}

/** Builds a `choria:transport:1` packet with keys in go-choria's order, omitting empty ones as Go does. */
export function newTransportV1(options: NewTransportOptions): TransportV1 {
  return {
    protocol: TRANSPORT_V1,
    data: options.data,
    headers: newHeaders(options) as TransportV1["headers"],
  };
}

/**
 * A packet in the 2017 dialect, for fleets still on that connector: no `protocol`, and seen-by a flat
 * list of names, to which each hop adds its own (`seenBy` here: the sender's).
 */
export function newSeedTransport(
  options: Omit<NewTransportOptions, "seenBy"> & { seenBy?: string[] },
): SeedTransport {
  return { data: options.data, headers: newHeaders(options) };
}

/** The headers both dialects share, in Go's field order; only the shape of a seen-by hop differs. */
function newHeaders<Hop>(options: Omit<NewTransportOptions, "seenBy"> & { seenBy?: Hop[] }): {
  "reply-to"?: string;
  mc_sender: string;
  "seen-by"?: Hop[];
  federation?: FederationHeader;
} {
  // Built field by field so the JSON keeps Go's order: reply-to, mc_sender, seen-by, federation.
  const headers = {} as ReturnType<typeof newHeaders<Hop>>;
  if (options.replyTo) headers["reply-to"] = options.replyTo;
  headers.mc_sender = options.sender;
  if (options.seenBy && options.seenBy.length > 0) headers["seen-by"] = options.seenBy;
  if (options.federation) {
    const fed: FederationHeader = { req: options.federation.req };
    if (options.federation.replyTo) fed["reply-to"] = options.federation.replyTo;
    if (options.federation.target && options.federation.target.length > 0)
      fed.target = options.federation.target;
    headers.federation = fed;
  }
  return headers;
}
