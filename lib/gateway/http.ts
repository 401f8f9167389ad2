// The HTTP side of a gateway request: the body read within its limit, authentication, the URL callers
// signed, Prefer and Idempotency-Key, Server-Timing, and streamed answers.
import { errorText, type Logger } from "../log/mod.ts";
import { encodeEvent, MEDIA_TYPES, type StreamEvent } from "../results/mod.ts";
import {
  type AuthProblem,
  type AuthResult,
  authenticate,
  type HttpRequestParts,
} from "../security/http/mod.ts";
import type { MessageBus } from "../transport/mod.ts";
import type { GatewayConfig } from "./config.ts";
import type { GatewayAuth } from "./deps.ts";
import { isProblemKind, type ProblemKind, problem } from "./problems.ts";
import { asRefusal, Refusal, refuse, refuseForNow } from "./refusal.ts";

/** RFC 7240: `Prefer: respond-async`, among other preferences. */
export function prefersAsync(prefer: string | null): boolean {
  return (prefer ?? "").split(",").some((p) => p.split(";")[0]?.trim().toLowerCase() === "respond-async");
}

export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export function idempotencyKeyOf(headers: Headers): string | undefined {
  const value = headers.get("idempotency-key");
  if (value === null) return undefined;
  // The header's value is an RFC 8941 string; the quotes are optional here, as most clients leave them out.
  const unquoted = value.trim().replace(/^"(.*)"$/, "$1");
  if (!IDEMPOTENCY_KEY.test(unquoted))
    throw refuse("invalid-body", "Idempotency-Key: 1 to 255 printable ASCII characters without spaces");
  return unquoted;
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new Uint8Array(bytes)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

export type Authenticated = Extract<AuthResult, { ok: true }>;

/**
 * The caller's key (and the nonce it used), or a Refusal: an authentication problem as its problem document, and a replay store
 * that cannot answer as a 503, so that the request fails closed.
 */
export async function authenticateOrFail(
  request: HttpRequestParts,
  auth: GatewayAuth,
  now: Date,
): Promise<Authenticated> {
  let result: AuthResult;
  try {
    result = await authenticate(request, {
      keys: auth.keys,
      replay: auth.replay,
      now,
      ...(auth.maxSkewSeconds === undefined ? {} : { maxSkewSeconds: auth.maxSkewSeconds }),
      ...(auth.maxAgeSeconds === undefined ? {} : { maxAgeSeconds: auth.maxAgeSeconds }),
      ...(auth.verify === undefined ? {} : { verify: auth.verify }),
    });
  } catch (err) {
    throw refuseForNow("replay-store-unavailable", `cannot check for replays: ${errorText(err)}`);
  }
  if (!result.ok) {
    const key = result.key;
    throw new Refusal(
      { ...problem(authProblemKind(result.problem), result.detail), status: result.status },
      {},
      key === undefined
        ? {}
        : { key: key.id, caller: key.caller, scheme: key.scheme, callerid: key.callerId },
    );
  }
  return result;
}

/** lib/security/http's reason codes as problem kinds: the same words, kebab-cased. */
export function authProblemKind(code: AuthProblem): ProblemKind {
  if (code === "body_too_large") return "payload-too-large";
  const kind = code.replaceAll("_", "-");
  return isProblemKind(kind) ? kind : "bad-signature";
}

/**
 * The URL the caller signed. Behind a proxy or load balancer the request arrives for an internal address;
 * `publicUrl` restores the origin callers use, since signatures cover it.
 */
export function publicUrl(url: string, config: GatewayConfig): string {
  if (config.publicUrl === undefined) return url;
  const received = new URL(url);
  return new URL(`${received.pathname}${received.search}`, config.publicUrl).href;
}

/**
 * Reads the body, refusing it as soon as it is known to be over `max` bytes: from Content-Length before
 * reading anything, otherwise while reading, so an oversized body is never held in full.
 */
export async function readBody(request: Request, max: number): Promise<Uint8Array> {
  try {
    return await readBodyWithin(request, max);
  } catch (err) {
    if (err instanceof Refusal || !clientHungUp(request, err)) throw err;
    throw refuse("client-aborted", "the client closed the connection before its body was complete");
  }
}

/**
 * Whether a body read failed because the caller went away. The runtimes abort the request's signal then
 * (@hono/node-server does before the read fails); Node's own error for a half-received body says so too.
 */
function clientHungUp(request: Request, err: unknown): boolean {
  if (request.signal.aborted) return true;
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "ECONNRESET";
}

async function readBodyWithin(request: Request, max: number): Promise<Uint8Array> {
  const tooLarge = (size: string) =>
    refuse("payload-too-large", `${size} is over the ${max} byte limit`, { limit: max });
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > max) throw tooLarge(`a body of ${declared} bytes`);
  if (declared !== null) {
    // The length is known and allowed: read it in one go (the runtimes' fast path, no stream per chunk).
    const body = new Uint8Array(await request.arrayBuffer());
    if (body.byteLength > max) throw tooLarge("the body");
    return body;
  }
  if (request.body === null) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      void discardRest(reader);
      throw tooLarge("the body");
    }
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

// What an over-limit body of unknown length may still send after the refusal, read and thrown away.
const DISCARD_BYTES = 8 * 1024 * 1024;
const DISCARD_MS = 10_000;

/**
 * Reads the rest of a refused body in the background, up to a bound, then hangs up. Cancelling at once
 * would close the socket while the caller is still sending, and about half the callers then saw a reset
 * instead of the 413 already on its way; a body that goes on past the bound gets the reset.
 */
async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  const until = Date.now() + DISCARD_MS;
  let discarded = 0;
  try {
    while (discarded <= DISCARD_BYTES && Date.now() <= until) {
      const { done, value } = await reader.read();
      if (done) return;
      discarded += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The caller went away: nothing left to discard.
  }
}

// The PING out on each connection, if any, and when it went. A request that starts while a young one is
// out waits for its PONG rather than send its own: the server answers a connection's PINGs in order, so a
// newer one could not be answered sooner, and under load one round trip serves the requests in flight
// instead of one each. An older one is not joined: it may have gone out before the process was frozen (a
// Lambda between invocations), and its PONG, already in a socket buffer, would prove nothing about now.
const PING_JOIN_MS = 50;
const pingsOut = new WeakMap<MessageBus, { at: number; answered: Promise<PingOutcome> }>();

/**
 * What became of a PING: `answered`; `dropped` when the connection went down before its PONG (the client
 * fails the PINGs out when it loses the socket: in a server's restart, say, it is already reconnecting);
 * `silent` when no answer came in time (a frozen server, a half-open socket).
 */
export type PingOutcome = "answered" | "dropped" | "silent";

function ping(bus: MessageBus): Promise<PingOutcome> {
  const now = Date.now();
  const young = pingsOut.get(bus);
  if (young !== undefined && now - young.at <= PING_JOIN_MS) return young.answered;
  const out = {
    at: now,
    answered: bus.flush().then(
      () => settled("answered"),
      () => settled("dropped"),
    ),
  };
  const settled = (outcome: PingOutcome) => {
    if (pingsOut.get(bus) === out) pingsOut.delete(bus);
    return outcome;
  };
  pingsOut.set(bus, out);
  return out.answered;
}

/**
 * How the server answered a PING (this request's, or one out for at most PING_JOIN_MS) within `ms`.
 * Never rejects.
 */
export function confirm(bus: MessageBus, ms: number): Promise<PingOutcome> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    ping(bus),
    new Promise<PingOutcome>((resolve) => {
      timer = setTimeout(() => resolve("silent"), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The value of a promise if it settles within `ms`, else undefined. */
export async function valueWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export function streamResponse(
  format: "ndjson" | "sse",
  abort: AbortController,
  serverTiming: string,
  log: Logger | undefined,
  run: (emit: (event: StreamEvent) => void) => Promise<void>,
): Response {
  const encoder = new TextEncoder();
  let open = true;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      // Called from reply callbacks: it must never throw, even when the client has gone.
      const emit = (event: StreamEvent) => {
        if (!open) return;
        try {
          controller.enqueue(encoder.encode(encodeEvent(format, event)));
        } catch {
          open = false;
        }
      };
      void run(emit)
        .catch((err: unknown) => emit({ ...asRefusal(err, log).doc, type: "error" }))
        .finally(() => {
          if (!open) return;
          open = false;
          controller.close();
        });
    },
    cancel() {
      open = false;
      abort.abort();
    },
  });
  return new Response(stream, {
    status: 200,
    headers: {
      "content-type": format === "sse" ? `${MEDIA_TYPES.sse}; charset=utf-8` : MEDIA_TYPES.ndjson,
      "cache-control": "no-store",
      "x-accel-buffering": "no",
      "server-timing": serverTiming,
    },
  });
}

/** The `Server-Timing` header: where a request's time went, for callers and benchmarks. */
export class ServerTiming {
  readonly #entries: string[] = [];

  add(name: string, ms: number, description: string): this {
    this.#entries.push(`${name};dur=${Math.max(0, ms)};desc="${description}"`);
    return this;
  }

  header(): string {
    return this.#entries.join(", ");
  }
}
