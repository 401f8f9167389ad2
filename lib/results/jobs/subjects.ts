import { replySubject } from "../../protocol/mod.ts";

/*
 * Where the replies of an async request go.
 *
 * The gateway sets the request's reply-to to
 *
 *     <collective>.reply.<md5(callerid)>.edgejob.<jobid>
 *
 * and the collectors take every such subject with `*.reply.*.edgejob.*` (through the JetStream stream that
 * captures them, or a core NATS queue subscription in group `choria_edge_collectors`).
 *
 * Why this shape:
 * - It is a Choria reply subject (`<collective>.reply.<hash>.<id>`, the id being `edgejob.<jobid>`, two
 *   tokens as legacy Ruby clients' `<pid>.<seq>` ids are), so the broker's bad_reply_to rule (reply-to must
 *   parse as a reply subject, the Ruby broker's `^.+?\.reply\.`) lets both the request and its replies
 *   through, and nodes treat it as the opaque subject it is.
 * - The md5 token stays the caller's, so NATS permissions that confine a caller to
 *   `<collective>.reply.<md5(callerid)>.>` (go-choria's ADR-001) still hold.
 * - Synchronous replies (`<collective>.reply.<hash>.<32 hex>`, four tokens) never match the five-token
 *   wildcard, so the collectors and their stream see async replies only; the job id in the last token
 *   names the job without any lookup.
 */

export const JOB_REPLY_MARKER = "edgejob";
export const JOB_REPLY_WILDCARD = `*.reply.*.${JOB_REPLY_MARKER}.*`;
/** Queue group of collectors on a core NATS subscription, and the name of their shared durable consumer. */
export const COLLECTOR_QUEUE = "choria_edge_collectors";
/** The JetStream stream that captures the replies of async requests. */
export const REPLY_STREAM = "CHORIA_EDGE_REPLIES";

const JOB_ID = /^[A-Za-z0-9_-]{24}$/;

/**
 * 18 random bytes, base64url: URL- and subject-safe, 144 bits that nobody can guess. Never with a
 * leading '-', which a command line (ours included) would take for an option.
 */
export function newJobId(): string {
  for (;;) {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    const id = btoa(String.fromCharCode(...bytes))
      .replaceAll("+", "-")
      .replaceAll("/", "_");
    if (!id.startsWith("-")) return id;
  }
}

export function isJobId(text: string): boolean {
  return JOB_ID.test(text);
}

/** The reply-to of an async request: a Choria reply subject of the caller that names the job. */
export function jobReplySubject(collective: string, callerid: string, jobId: string): string {
  if (!isJobId(jobId)) throw new Error(`not a job id: ${JSON.stringify(jobId)}`);
  return replySubject(collective, callerid, `${JOB_REPLY_MARKER}.${jobId}`);
}

/** The job a reply subject belongs to, or undefined for any subject not made by jobReplySubject. */
export function jobIdOfSubject(subject: string): string | undefined {
  const tokens = subject.split(".");
  if (tokens.length !== 5 || tokens[1] !== "reply" || tokens[3] !== JOB_REPLY_MARKER) return undefined;
  const id = tokens[4]!;
  return isJobId(id) && tokens[0] !== "" && tokens[2] !== "" ? id : undefined;
}
