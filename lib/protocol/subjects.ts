import { type Decoded, fail, ok, ProtocolError } from "./errors.ts";
import { callerIdHash } from "./ids.ts";

/*
 * Choria NATS subjects (spec §5):
 *   <collective>.broadcast.agent.<agent>        broadcast to every node with the agent
 *   <collective>.broadcast.service.<agent>      load-balanced service agent (queue group <agent>)
 *   <collective>.node.<identity>                one node; identities contain dots (node1.example.net)
 *   <collective>.reply.<callerHash>.<requestId> replies; callerHash is hex md5(callerid) (sha256 in Go's
 *                                               FIPS mode); requestId is Go's 32-hex id, or `<pid>.<seq>`
 *                                               for legacy Ruby clients, so it may contain dots
 *   choria.federation.<cluster>.federation      requests into a federation broker cluster
 *   choria.federation.<cluster>.collective      replies from the collective back into the broker
 *   choria.federation.<cluster>.stats           the legacy Ruby broker's stats
 *
 * Limits, chosen so that anything Choria itself builds fits and anything that could misroute does not:
 * - every token is printable ASCII without `*`, `>` or `.`: no wildcards, whitespace, control or
 *   non-ASCII characters, and no empty tokens (so no leading, trailing or doubled dots);
 * - collective, agent and cluster are single tokens of at most 128 characters;
 * - an identity is at most 253 characters (the DNS name limit); a whole subject at most 512 characters
 *   and 64 tokens, far inside nats-server's 4,096-byte control line, so that a publish to a subject taken
 *   from a packet can never make the server close the connection (and with it every other request);
 * - nothing in NATS's reserved namespaces: no subject starts with `$` (`$JS.`, `$KV.`, `$SYS.`…).
 * Reply subjects are otherwise opaque to servers and brokers, so the caller hash is not required to be hex.
 */

export const SUBJECT_MAX_LENGTH = 512;
export const IDENTITY_MAX_LENGTH = 253;
export const NAME_MAX_LENGTH = 128;
const SUBJECT_MAX_TOKENS = 64;
/** Labels an identity may have: its node subject (`<collective>.node.<identity>`) stays within the tokens. */
export const IDENTITY_MAX_TOKENS = SUBJECT_MAX_TOKENS - 2;

// Printable ASCII 0x21-0x7e except `*` (0x2a), `.` (0x2e) and `>` (0x3e).
const SAFE_TOKEN = /^[\x21-\x29\x2b-\x2d\x2f-\x3d\x3f-\x7e]+$/;

export type ParsedSubject =
  | { kind: "broadcast"; collective: string; agent: string }
  | { kind: "service"; collective: string; agent: string }
  | { kind: "node"; collective: string; identity: string }
  | { kind: "reply"; collective: string; callerHash: string; requestId: string }
  | { kind: "federation"; cluster: string }
  | { kind: "collective"; cluster: string }
  | { kind: "stats"; cluster: string };

const FEDERATION_KINDS: ReadonlySet<string> = new Set(["federation", "collective", "stats"]);

/** Why a token is unsafe, or undefined when it is fine. */
function tokenProblem(token: string): string | undefined {
  if (SAFE_TOKEN.test(token)) return undefined;
  if (token === "") return "empty token (leading, trailing or doubled dot)";
  if (token.includes("*") || token.includes(">")) return "wildcards are not allowed";
  if (/[\s\x00-\x1f\x7f]/.test(token)) return "whitespace and control characters are not allowed";
  if (token.includes(".")) return "must be a single token";
  return "only printable ASCII is allowed";
}

function checkName(field: string, value: string): ProtocolError | undefined {
  const problem = tokenProblem(value);
  if (problem)
    return new ProtocolError("subject", "invalid_field", field, `${JSON.stringify(value)}: ${problem}`);
  if (value.length > NAME_MAX_LENGTH)
    return new ProtocolError("subject", "too_large", field, `longer than ${NAME_MAX_LENGTH} characters`);
  return undefined;
}

function checkDotted(field: string, value: string, maxLength: number): ProtocolError | undefined {
  if (value.length > maxLength)
    return new ProtocolError("subject", "too_large", field, `longer than ${maxLength} characters`);
  for (const token of value.split(".")) {
    const problem = tokenProblem(token);
    if (problem)
      return new ProtocolError("subject", "invalid_field", field, `${JSON.stringify(value)}: ${problem}`);
  }
  return undefined;
}

function built(subject: string, ...problems: (ProtocolError | undefined)[]): string {
  for (const problem of problems) if (problem) throw problem;
  if (subject.length > SUBJECT_MAX_LENGTH)
    throw new ProtocolError("subject", "too_large", "", `longer than ${SUBJECT_MAX_LENGTH} characters`);
  if (subject.split(".").length > SUBJECT_MAX_TOKENS)
    throw new ProtocolError("subject", "too_large", "", `more than ${SUBJECT_MAX_TOKENS} tokens`);
  if (subject.startsWith("$"))
    throw new ProtocolError("subject", "invalid_field", "", "a reserved NATS namespace");
  return subject;
}

// Builders throw: an unsafe token here is a programmer error, not untrusted input.

export function broadcastSubject(collective: string, agent: string): string {
  return built(
    `${collective}.broadcast.agent.${agent}`,
    checkName("collective", collective),
    checkName("agent", agent),
  );
}

export function serviceSubject(collective: string, agent: string): string {
  return built(
    `${collective}.broadcast.service.${agent}`,
    checkName("collective", collective),
    checkName("agent", agent),
  );
}

export function nodeSubject(collective: string, identity: string): string {
  return built(
    `${collective}.node.${identity}`,
    checkName("collective", collective),
    checkDotted("identity", identity, IDENTITY_MAX_LENGTH),
  );
}

/** The subject Go clients listen on for a request's replies: `<collective>.reply.<md5(callerid)>.<id>`. */
export function replySubject(collective: string, callerid: string, requestId: string): string {
  return built(
    `${collective}.reply.${callerIdHash(callerid)}.${requestId}`,
    checkName("collective", collective),
    checkDotted("requestId", requestId, SUBJECT_MAX_LENGTH),
  );
}

export function federationSubject(cluster: string): string {
  return built(`choria.federation.${cluster}.federation`, checkName("cluster", cluster));
}

export function collectiveSubject(cluster: string): string {
  return built(`choria.federation.${cluster}.collective`, checkName("cluster", cluster));
}

export function statsSubject(cluster: string): string {
  return built(`choria.federation.${cluster}.stats`, checkName("cluster", cluster));
}

/** The subject a parsed subject came from; throws like the builders on unsafe fields. */
export function formatSubject(parsed: ParsedSubject): string {
  switch (parsed.kind) {
    case "broadcast":
      return broadcastSubject(parsed.collective, parsed.agent);
    case "service":
      return serviceSubject(parsed.collective, parsed.agent);
    case "node":
      return nodeSubject(parsed.collective, parsed.identity);
    case "reply":
      return built(
        `${parsed.collective}.reply.${parsed.callerHash}.${parsed.requestId}`,
        checkName("collective", parsed.collective),
        checkName("callerHash", parsed.callerHash),
        checkDotted("requestId", parsed.requestId, SUBJECT_MAX_LENGTH),
      );
    case "federation":
      return federationSubject(parsed.cluster);
    case "collective":
      return collectiveSubject(parsed.cluster);
    case "stats":
      return statsSubject(parsed.cluster);
  }
}

function refuse(field: string, detail: string): Decoded<ParsedSubject> {
  return fail("subject", "invalid_field", field, detail);
}

/** Classifies an untrusted subject, refusing anything unsafe or of a shape Choria does not use. */
export function parseSubject(subject: string): Decoded<ParsedSubject> {
  if (typeof subject !== "string" || subject === "") return refuse("", "empty subject");
  if (subject.length > SUBJECT_MAX_LENGTH)
    return fail("subject", "too_large", "", `longer than ${SUBJECT_MAX_LENGTH} characters`);
  if (subject.startsWith("$")) return refuse("", `${JSON.stringify(subject)}: a reserved NATS namespace`);
  const tokens = subject.split(".");
  if (tokens.length > SUBJECT_MAX_TOKENS)
    return fail("subject", "too_large", "", `more than ${SUBJECT_MAX_TOKENS} tokens`);
  for (const token of tokens) {
    const problem = tokenProblem(token);
    if (problem) return refuse("", `${JSON.stringify(subject)}: ${problem}`);
  }
  const [first, second, third] = tokens as [string, string, ...string[]];
  if (tokens.length < 3) return refuse("", `${JSON.stringify(subject)}: not a Choria subject`);

  if (first === "choria" && second === "federation") {
    const kind = tokens[3];
    if (tokens.length !== 4 || kind === undefined || !FEDERATION_KINDS.has(kind))
      return refuse("", `${JSON.stringify(subject)}: not a federation subject`);
    const problem = checkName("cluster", third!);
    if (problem) return { ok: false, error: problem };
    return ok({ kind: kind as "federation" | "collective" | "stats", cluster: third! });
  }

  const collectiveProblem = checkName("collective", first);
  if (collectiveProblem) return { ok: false, error: collectiveProblem };

  switch (second) {
    case "broadcast": {
      const agent = tokens[3];
      if (tokens.length !== 4 || agent === undefined || (third !== "agent" && third !== "service"))
        return refuse("", `${JSON.stringify(subject)}: not a broadcast subject`);
      const problem = checkName("agent", agent);
      if (problem) return { ok: false, error: problem };
      return ok({ kind: third === "agent" ? "broadcast" : "service", collective: first, agent });
    }
    case "node": {
      const identity = tokens.slice(2).join(".");
      if (identity.length > IDENTITY_MAX_LENGTH)
        return fail("subject", "too_large", "identity", `longer than ${IDENTITY_MAX_LENGTH} characters`);
      return ok({ kind: "node", collective: first, identity });
    }
    case "reply": {
      if (tokens.length < 4) return refuse("requestId", `${JSON.stringify(subject)}: no request id`);
      const problem = checkName("callerHash", third!);
      if (problem) return { ok: false, error: problem };
      return ok({
        kind: "reply",
        collective: first,
        callerHash: third!,
        requestId: tokens.slice(3).join("."),
      });
    }
    default:
      return refuse("", `${JSON.stringify(subject)}: not a Choria subject`);
  }
}

/**
 * Why a subject taken from a packet (a reply-to, say) may not be published to, or undefined when it may:
 * the limits above, whatever its kind. Publishing to an over-long subject makes nats-server close the
 * connection, and with it every request the connection carries.
 */
export function subjectProblem(subject: string): string | undefined {
  if (typeof subject !== "string" || subject === "") return "empty subject";
  if (subject.length > SUBJECT_MAX_LENGTH) return `longer than ${SUBJECT_MAX_LENGTH} characters`;
  if (subject.charCodeAt(0) === 0x24) return "a reserved NATS namespace ($)";
  const tokens = subject.split(".");
  if (tokens.length > SUBJECT_MAX_TOKENS) return `more than ${SUBJECT_MAX_TOKENS} tokens`;
  for (const token of tokens) {
    const problem = tokenProblem(token);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * True for subjects a federation broker may publish requests to: broadcast agent and node subjects, the
 * legacy Ruby broker's rule. Anything else, notably `choria.federation.*`, could bounce a request back into
 * a federation and loop.
 */
export function isFederationTarget(subject: string): boolean {
  const parsed = parseSubject(subject);
  return parsed.ok && (parsed.value.kind === "broadcast" || parsed.value.kind === "node");
}

/** True for a well-formed `<collective>.reply.<hash>.<id>` subject. */
export function isReplySubject(subject: string): boolean {
  const parsed = parseSubject(subject);
  return parsed.ok && parsed.value.kind === "reply";
}
