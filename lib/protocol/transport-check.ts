// The transport schemas of transport.ts, checked by hand. The broker checks every packet it carries, and the
// zod walk was a quarter of its CPU per message; this accepts and refuses exactly what validateTransport
// does, naming the same first field with the same words (test/unit/protocol/transport-check.test.ts holds
// the two to each other over generated packets), and returns the value as zod would: known keys first in
// the schema's order, two-element hops padded, `__proto__` members left out.
import { type Decoded, fail, ok } from "./errors.ts";
import type { TransportDialect, TransportPacket } from "./transport.ts";

type Headers = TransportPacket["headers"];
type Hop = [string, string, string];
type Json = Record<string, unknown>;

export const TRANSPORT_V1 = "choria:transport:1";
// Later Choria protocol versions (v2 names its ids "io.choria.protocol.v2.transport"); we must
// refuse them by name rather than misread their renamed headers as an empty v1 packet.
const OTHER_TRANSPORT_VERSION = /^(?:choria:transport:\d+|io\.choria\.protocol\.v\d+\.transport)$/;
const REQUEST_ID_MAX = 255;

/** A field's first problem, in the words zod uses, or undefined. */
type Problem = { field: string; detail: string } | undefined;

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const expected = (type: string, value: unknown) =>
  `Invalid input: expected ${type}, received ${kindOf(value)}`;

function stringProblem(field: string, value: unknown, min: number, max?: number): Problem {
  if (typeof value !== "string") return { field, detail: expected("string", value) };
  if (value.length < min) return { field, detail: `Too small: expected string to have >=${min} characters` };
  if (max !== undefined && value.length > max)
    return { field, detail: `Too big: expected string to have <=${max} characters` };
  return undefined;
}

function optionalString(field: string, value: unknown, min: number): Problem {
  return value === undefined ? undefined : stringProblem(field, value, min);
}

function stringsProblem(field: string, value: unknown, min: number): Problem {
  if (!Array.isArray(value)) return { field, detail: expected("array", value) };
  for (let i = 0; i < value.length; i++) {
    const problem = stringProblem(`${field}.${i}`, value[i], min);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function isHop(value: unknown): value is [string, string] | Hop {
  return (
    Array.isArray(value) &&
    (value.length === 2 || value.length === 3) &&
    value.every((part) => typeof part === "string")
  );
}

function hopsProblem(value: unknown): Problem {
  const field = "headers.seen-by";
  if (!Array.isArray(value)) return { field, detail: expected("array", value) };
  for (let i = 0; i < value.length; i++)
    if (!isHop(value[i])) return { field: `${field}.${i}`, detail: "Invalid input" };
  return undefined;
}

function federationProblem(value: unknown, dialect: TransportDialect): Problem {
  const field = "headers.federation";
  if (!isObject(value)) return { field, detail: expected("object", value) };
  const req = value.req;
  return (
    (dialect === "v1"
      ? stringProblem(`${field}.req`, req, 1, REQUEST_ID_MAX)
      : optionalString(`${field}.req`, req, 1)) ??
    optionalString(`${field}.reply-to`, value["reply-to"], 1) ??
    (value.target === undefined ? undefined : stringsProblem(`${field}.target`, value.target, 1))
  );
}

function headersProblem(value: unknown, dialect: TransportDialect): Problem {
  if (!isObject(value)) return { field: "headers", detail: expected("object", value) };
  const hops = value["seen-by"];
  return (
    optionalString("headers.reply-to", value["reply-to"], 1) ??
    optionalString("headers.mc_sender", value.mc_sender, dialect === "v1" ? 0 : 1) ??
    (hops === undefined
      ? undefined
      : dialect === "v1"
        ? hopsProblem(hops)
        : stringsProblem("headers.seen-by", hops, 0)) ??
    (value.federation === undefined ? undefined : federationProblem(value.federation, dialect))
  );
}

/**
 * A copy with `known` keys first, in that order, then the others as they came, as a zod loose object; or
 * the value itself when it already is that, as every packet a Choria peer writes is: the callers own what
 * they pass (a fresh parse), and the copies were a tenth of the CPU of opening a reply.
 */
function ordered(value: Json, known: readonly string[], replace?: Record<string, unknown>): Json {
  if (isOrdered(value, known, replace)) return value;
  const out: Json = {};
  for (const key of known) {
    if (value[key] !== undefined) out[key] = replace?.[key] ?? value[key];
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key) && key !== "__proto__") out[key] = value[key];
  }
  return out;
}

function isOrdered(value: Json, known: readonly string[], replace?: Record<string, unknown>): boolean {
  for (const key in replace) if (replace[key] !== value[key]) return false;
  // The index in `known` the next known key may take at the least; past the end once another key came.
  let next = 0;
  for (const key of Object.keys(value)) {
    if (key === "__proto__" || value[key] === undefined) return false;
    const at = known.indexOf(key);
    if (at === -1) next = known.length;
    else if (at < next) return false;
    else next = at + 1;
  }
  return true;
}

const HEADER_KEYS = ["reply-to", "mc_sender", "seen-by", "federation"] as const;
const FEDERATION_KEYS = ["req", "reply-to", "target"] as const;

function normalisedHeaders(value: Json, dialect: TransportDialect): Headers {
  const replace: Json = {};
  const hops = value["seen-by"] as unknown[] | undefined;
  if (dialect === "v1" && hops?.some((hop) => (hop as string[]).length === 2))
    replace["seen-by"] = hops.map((hop) => {
      const [from, by, to = ""] = hop as string[];
      return [from, by, to] as Hop;
    });
  if (value.federation !== undefined) replace.federation = ordered(value.federation as Json, FEDERATION_KEYS);
  return ordered(value, HEADER_KEYS, replace) as Headers;
}

/**
 * Checks an already-parsed `headers` member for a packet of the given dialect, and returns it as
 * validateTransport would. For callers that have checked the rest of the packet themselves.
 */
export function checkTransportHeaders(value: unknown, dialect: TransportDialect): Decoded<Headers> {
  const problem = headersProblem(value, dialect);
  if (problem !== undefined) return fail("transport", "invalid_field", problem.field, problem.detail);
  return ok(normalisedHeaders(value as Json, dialect));
}

/** The dialect a packet's `protocol` member names (absent: the seed dialect), or why it is refused. */
export function transportDialect(protocol: unknown): Decoded<TransportDialect> {
  if (protocol === undefined) return ok("seed");
  if (protocol === TRANSPORT_V1) return ok("v1");
  if (typeof protocol === "string" && OTHER_TRANSPORT_VERSION.test(protocol))
    return fail("transport", "unsupported_protocol", "protocol", `unsupported protocol version ${protocol}`);
  return fail("transport", "invalid_field", "protocol", `unknown protocol ${JSON.stringify(protocol)}`);
}

/** validateTransport without zod: the same answers, the same refusals, a fraction of the work. */
export function checkTransport(value: unknown): Decoded<TransportPacket> {
  if (!isObject(value)) return fail("transport", "invalid_field", "", "expected a JSON object");
  const dialect = transportDialect(value.protocol);
  if (!dialect.ok) return dialect;
  const dataProblem = stringProblem("data", value.data, 0);
  if (dataProblem !== undefined)
    return fail("transport", "invalid_field", dataProblem.field, dataProblem.detail);
  const headers = checkTransportHeaders(value.headers, dialect.value);
  if (!headers.ok) return headers;
  return ok(ordered(value, ["protocol", "data", "headers"], { headers: headers.value }) as TransportPacket);
}
