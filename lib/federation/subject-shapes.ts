// The subjects a broker checks on every packet (each target of a request, the reply-to of each request and
// reply) in one regular expression each, for the shapes Choria itself writes. parseSubject splits a subject
// into tokens and tests each one, which was a third of the broker's routing time on a 10-target fan-out.
// These only ever accept: a subject they do not match is parsed in full, which also words the refusal.
// test/unit/federation/subject-shapes.test.ts holds them to parseSubject.
import { IDENTITY_MAX_LENGTH, SUBJECT_MAX_LENGTH } from "../protocol/mod.ts";

// A token: printable ASCII without `*`, `.` or `>`, as parseSubject's SAFE_TOKEN; collective, agent and
// caller hash are single tokens of at most 128 characters, and no subject has more than 64 tokens.
const T = "[\\x21-\\x29\\x2b-\\x2d\\x2f-\\x3d\\x3f-\\x7e]";
const NAME = `${T}{1,128}`;
const BROADCAST = new RegExp(`^${NAME}\\.broadcast\\.agent\\.${NAME}$`);
const NODE = new RegExp(`^${NAME}\\.node\\.${T}+(?:\\.${T}+){0,61}$`);
const REPLY = new RegExp(`^${NAME}\\.reply\\.${NAME}(?:\\.${T}+){1,61}$`);

/**
 * The collective of a broadcast agent or node subject within every limit parseSubject sets; undefined
 * for any other subject, or when only parseSubject can tell.
 */
export function targetCollective(subject: string): string | undefined {
  const dot = subject.indexOf(".");
  if (subject.length > SUBJECT_MAX_LENGTH || dot === -1 || subject.charCodeAt(0) === DOLLAR) return undefined;
  if (subject.startsWith("node.", dot + 1)) {
    // The identity follows `<collective>.node.`.
    if (subject.length - dot - 6 > IDENTITY_MAX_LENGTH) return undefined;
    return NODE.test(subject) ? subject.slice(0, dot) : undefined;
  }
  return BROADCAST.test(subject) ? subject.slice(0, dot) : undefined;
}

/** The collective of a reply subject within every limit parseSubject sets, as targetCollective. */
export function replyCollective(subject: string): string | undefined {
  if (subject.length > SUBJECT_MAX_LENGTH || subject.charCodeAt(0) === DOLLAR) return undefined;
  return REPLY.test(subject) ? subject.slice(0, subject.indexOf(".")) : undefined;
}

const DOLLAR = 0x24;
