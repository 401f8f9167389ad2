/*
 * The KV layout of async jobs, in one bucket (default `choria_edge_jobs`) whose max_age is the retention:
 *
 *   job.<id>.meta          the job record: request, deadline, state, counts, callback and its attempts;
 *                          updated by compare-and-set on its revision
 *   job.<id>.t.<n>         the identities the request went to, in chunks (written once, at creation)
 *   job.<id>.r.<identity>  one node's result (its reply, or the no_reply mark made when the job ended);
 *                          written once with create, so the first of reply and mark wins
 *   job.<id>.c.<identity>  a second reply from that node, different from its result (a forgery, or the
 *                          real reply after a forged one): the first such, written once with create
 *   run.<id>               index of jobs a collector still has work on (waiting for replies or delivering
 *                          the callback); deleted when there is none left
 *   idem.<caller>.<key>    idempotency claim: the job made for that caller's Idempotency-Key (atomic create)
 *
 * The bucket keeps one value per key, and every key expires `retention` after its last write (nats-server
 * 2.9 has no per-key TTL), so a job, its results and its idempotency claim all go together.
 * Everything under `job.<id>.` is read in write order with one filtered scan: results page and stream
 * by their revision.
 */

export const DEFAULT_BUCKET = "choria_edge_jobs";

export function metaKey(jobId: string): string {
  return `job.${jobId}.meta`;
}

export function targetsKey(jobId: string, chunk: number): string {
  return `job.${jobId}.t.${chunk}`;
}

export function resultKey(jobId: string, identity: string): string {
  return `job.${jobId}.r.${escapeKeyToken(identity)}`;
}

export function resultsFilter(jobId: string): string {
  return `job.${jobId}.r.*`;
}

export function conflictKey(jobId: string, identity: string): string {
  return `job.${jobId}.c.${escapeKeyToken(identity)}`;
}

export function conflictsFilter(jobId: string): string {
  return `job.${jobId}.c.*`;
}

/** Everything of one job: record, targets, results and conflicting replies. */
export function jobFilter(jobId: string): string {
  return `job.${jobId}.>`;
}

/** Every job record, for listing jobs. */
export const META_FILTER = "job.*.meta";

export function runKey(jobId: string): string {
  return `run.${jobId}`;
}

export const RUN_FILTER = "run.*";

export function isResultKey(jobId: string, key: string): boolean {
  return key.startsWith(`job.${jobId}.r.`);
}

/** The claim key of an Idempotency-Key: the key is hashed, so any text (and any length) maps to one token. */
export async function idempotencyKey(caller: string, key: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
  const hashed = btoa(String.fromCharCode(...digest))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
  return `idem.${escapeKeyToken(caller)}.${hashed}`;
}

const encoder = new TextEncoder();

/** `=XX` for each ASCII code, so that the common case (identities of ASCII host names) encodes nothing. */
const ASCII_ESCAPES = Array.from(
  { length: 0x80 },
  (_, c) => `=${c.toString(16).toUpperCase().padStart(2, "0")}`,
);

function isSafe(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x5f || // _
    c === 0x2d // -
  );
}

/**
 * One KV key token for any text: letters, digits, `_` and `-` stay, every other byte of the UTF-8 becomes
 * `=XX` (upper-case hex). Injective, so two identities never share a key; dots cannot split the token.
 * Called for every reply the collectors store, so ASCII is done by table, not by encoding.
 */
export function escapeKeyToken(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isSafe(c)) {
      out += text[i];
    } else if (c < 0x80) {
      out += ASCII_ESCAPES[c];
    } else {
      // One code point (a surrogate pair, or a lone surrogate, which encodes as U+FFFD) as its UTF-8 bytes.
      const point = text.codePointAt(i)!;
      if (point > 0xffff) i++;
      for (const byte of encoder.encode(String.fromCodePoint(point)))
        out += `=${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    }
  }
  return out === "" ? "=" : out;
}
