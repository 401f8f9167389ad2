// The commands' HTTP client for the gateway: node:http and node:https rather than fetch, whose first call
// costs a process ~150 ms of CPU (undici and its wasm parser load), more than the rest of `req`'s start-up.
import { type IncomingMessage, request as plainRequest } from "node:http";
import { request as tlsRequest } from "node:https";

/** The part of an answer the commands read, shaped as fetch's Response is. */
export interface GatewayAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null };
  /** The body as it arrives. */
  readonly body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/** One request; rejects when no answer comes (refused, reset, not http or https). */
export function send(
  url: string,
  init: { method: string; headers: Iterable<[string, string]>; body?: Uint8Array },
): Promise<GatewayAnswer> {
  const target = new URL(url);
  const request =
    target.protocol === "https:" ? tlsRequest : target.protocol === "http:" ? plainRequest : undefined;
  if (request === undefined) return Promise.reject(new Error(`not an http or https URL`));
  return new Promise((resolve, reject) => {
    const sent = request(target, { method: init.method, headers: Object.fromEntries(init.headers) }, (res) =>
      resolve(answer(res)),
    );
    sent.on("error", reject);
    sent.end(init.body);
  });
}

function answer(res: IncomingMessage): GatewayAnswer {
  const status = res.statusCode ?? 0;
  const text = async () => {
    const decoder = new TextDecoder();
    let body = "";
    for await (const chunk of res) body += decoder.decode(chunk as Uint8Array, { stream: true });
    return body + decoder.decode();
  };
  return {
    status,
    statusText: res.statusMessage ?? "",
    ok: status >= 200 && status < 300,
    headers: {
      get: (name) => {
        const value = res.headers[name.toLowerCase()];
        return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
      },
    },
    body: res,
    text,
    json: async () => JSON.parse(await text()),
  };
}
