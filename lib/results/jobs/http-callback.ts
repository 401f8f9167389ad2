import { lookup } from "node:dns/promises";
import { type ClientRequest, request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import { errorText } from "../../log/mod.ts";
import { addressAllowed, classifyAddress } from "./address.ts";
import type { CallbackOutcome, UrlCallbackSender } from "./callbacks.ts";
import { openSecret } from "./sealed-secret.ts";
import { webhookHeaders } from "./webhook.ts";

/*
 * URL callbacks, posted by the collector (Node only). The target's name is resolved here, every address
 * it resolves to is checked (lib/results/jobs/address.ts), and the connection goes to an address that
 * was checked: the socket's own lookup is answered from that list, so a second DNS answer (a rebind
 * between check and connect) never gets a say. The URL is left as written, so the Host header, the TLS
 * server name (SNI) and the certificate check all still use the name.
 */

export interface HttpCallbackOptions {
  /** Signing secret for URL callbacks that bring none of their own. */
  secret?: string;
  /** Per attempt, resolution included; the Standard Webhooks guidance is 15 to 30 s. */
  timeoutMs?: number;
  /** Also post to http:// URLs (local stack, tests); https only otherwise. */
  allowHttp?: boolean;
  /** Also reach loopback, private, unique-local and CGNAT addresses (local stack, tests, own network). */
  allowPrivate?: boolean;
  /** Resolves a name to its addresses; the system resolver (getaddrinfo, as any connection) by default. */
  resolve?: (host: string) => Promise<string[]>;
  /** CA certificates to trust instead of Node's bundle (tests, private CAs). */
  ca?: string;
  /** Opens the secrets that gateways sealed into job records (sealed-secret.ts, `--callback-seal-key`). */
  sealKey?: CryptoKey;
  now?: () => number;
}

const systemResolve = async (host: string): Promise<string[]> =>
  (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

/** POSTs the message, signed with Standard Webhooks headers; any 2xx is a delivery, redirects are not followed. */
export function httpCallbackSender(options: HttpCallbackOptions = {}): UrlCallbackSender {
  const now = options.now ?? Date.now;
  const resolve = options.resolve ?? systemResolve;
  const timeoutMs = options.timeoutMs ?? 15_000;
  return async (target, message) => {
    let url: URL;
    try {
      url = new URL(target.url);
    } catch {
      return invalid("not a URL");
    }
    if (url.protocol !== "https:" && !(options.allowHttp && url.protocol === "http:"))
      return invalid("callback URLs must be https (--allow-http-callbacks for http)");
    let secret = target.secret ?? options.secret;
    if (target.secret_sealed !== undefined) {
      secret = options.sealKey && (await openSecret(options.sealKey, target.secret_sealed, target.url));
      if (secret === undefined)
        return invalid(
          "the callback's sealed secret does not open with this collector's --callback-seal-key",
        );
    }
    if (secret === undefined) return invalid("no signing secret for this callback");
    const signal = AbortSignal.timeout(timeoutMs);

    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    let addresses: string[];
    try {
      addresses = isIP(host) ? [host] : await untilAborted(resolve(host), signal);
    } catch (err) {
      return failure(signal, `resolving ${host}: ${errorText(err)}`);
    }
    if (addresses.length === 0)
      return { ok: false, outcome: "connection_failed", detail: `${host}: no address` };
    const refused = addresses.find((address) => !addressAllowed(address, options.allowPrivate === true));
    if (refused !== undefined)
      return {
        ok: false,
        outcome: "refused_address",
        final: true,
        detail: `${host} resolves to ${refused}, a ${classifyAddress(refused)} address (--allow-private-callbacks opens loopback, private, unique-local and CGNAT addresses)`,
      };

    const body = new TextEncoder().encode(message.body);
    try {
      const status = await post(url, addresses, {
        headers: {
          "content-type": "application/json",
          "content-length": String(body.byteLength),
          "user-agent": "choria-edge-collector",
          ...(await webhookHeaders(secret, message.id, message.body, now())),
        },
        body,
        signal,
        ...(options.ca === undefined ? {} : { ca: options.ca }),
      });
      if (status >= 200 && status < 300) return { ok: true, outcome: "delivered", status };
      return { ok: false, outcome: "http_error", status, ...(status === 410 ? { final: true } : {}) };
    } catch (err) {
      return failure(signal, errorText(err));
    }
  };
}

function invalid(detail: string): CallbackOutcome {
  return { ok: false, outcome: "invalid_target", final: true, detail };
}

function failure(signal: AbortSignal, detail: string): CallbackOutcome {
  return { ok: false, outcome: signal.aborted ? "timeout" : "connection_failed", detail };
}

function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The response's status; the body is not read. Connects only to `addresses`, whatever DNS says now. */
function post(
  url: URL,
  addresses: readonly string[],
  init: { headers: Record<string, string>; body: Uint8Array; signal: AbortSignal; ca?: string },
): Promise<number> {
  const entries = addresses.map((address) => ({ address, family: isIP(address) }));
  const pinned = ((_hostname, lookupOptions, callback) => {
    const first = entries[0]!;
    if (lookupOptions.all) callback(null, entries);
    else callback(null, first.address, first.family);
  }) as LookupFunction;
  return new Promise((resolve, reject) => {
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    const request: ClientRequest = send(url, {
      method: "POST",
      headers: init.headers,
      lookup: pinned,
      // A fresh connection per attempt: nothing pooled from another target or another check.
      agent: false,
      signal: init.signal,
      ...(init.ca === undefined ? {} : { ca: init.ca }),
    });
    request.on("response", (response: IncomingMessage) => {
      resolve(response.statusCode ?? 0);
      response.destroy();
    });
    request.on("error", reject);
    request.end(init.body);
  });
}
