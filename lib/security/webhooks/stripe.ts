import { constantTimeEqual } from "../mod.ts";
import type { VerifyContext } from "./support.ts";
import {
  asBytes,
  freshness,
  hmacSha256,
  jsonObject,
  parseUnixSeconds,
  refuse,
  strictUtf8,
  stringField,
  toHex,
} from "./support.ts";
import type { WebhookVerdict } from "./types.ts";

/*
 * Stripe: `Stripe-Signature: t=<Unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]`, each v1 the hex
 * HMAC-SHA256 of `<t>.<raw body>` keyed with the endpoint secret exactly as shown in the dashboard,
 * `whsec_` included, taken as UTF-8 text (Stripe's libraries pass the string straight to HMAC; it is not
 * base64 like a Standard Webhooks secret). Several v1 entries appear while a secret is rotated; v0 and
 * unknown keys are skipped. Stripe's libraries only refuse old timestamps; this refuses the future too.
 * Stripe's event id (`evt_...`) and type are in the JSON body, not in a header.
 */

const HEX_SHA256 = /^[0-9a-fA-F]{64}$/;

function parseHeader(header: string): { timestamps: string[]; signatures: string[] } {
  const timestamps: string[] = [];
  const signatures: string[] = [];
  for (const element of header.split(",")) {
    const equals = element.indexOf("=");
    if (equals < 0) continue;
    const key = element.slice(0, equals).trim();
    const value = element.slice(equals + 1).trim();
    if (key === "t") timestamps.push(value);
    if (key === "v1" && HEX_SHA256.test(value)) signatures.push(value.toLowerCase());
  }
  return { timestamps, signatures };
}

export async function verifyStripe(context: VerifyContext): Promise<WebhookVerdict> {
  const header = context.headers.get("stripe-signature");
  if (header === null) return refuse("missing_signature", "no Stripe-Signature header");
  const { timestamps, signatures } = parseHeader(header);
  const timestampText = timestamps.length === 1 ? timestamps[0]! : "";
  const timestamp = parseUnixSeconds(timestampText);
  if (timestamp === undefined) {
    return refuse("malformed_signature", "Stripe-Signature needs exactly one t=<Unix seconds>");
  }
  if (signatures.length === 0) {
    return refuse("malformed_signature", "Stripe-Signature holds no v1=<64 hex digits> entry");
  }
  let matched = false;
  for (const secret of context.secrets) {
    const expected = toHex(await hmacSha256(asBytes(secret), `${timestampText}.`, context.body));
    // Every entry is compared, so the time taken does not tell which one matched.
    for (const signature of signatures) matched = constantTimeEqual(signature, expected) || matched;
    if (matched) break;
  }
  if (!matched) {
    return refuse(
      "bad_signature",
      `none of ${signatures.length} v1 signature(s) matches the ${context.secrets.length} secret(s)`,
    );
  }
  const stale = freshness(timestamp, context);
  if (stale) return stale;
  const event = jsonObject(strictUtf8(context.body));
  const deliveryId = stringField(event, "id");
  if (deliveryId === undefined)
    return refuse("missing_delivery_id", "the body is not a Stripe event with an id");
  const type = stringField(event, "type");
  return { ok: true, scheme: "stripe", deliveryId, timestamp, ...(type ? { event: type } : {}) };
}

/** The Stripe-Signature value Stripe would send for this body at `timestamp`. */
export async function signStripe(
  secret: string,
  timestamp: number,
  body: string | Uint8Array,
): Promise<string> {
  return `t=${timestamp},v1=${toHex(await hmacSha256(asBytes(secret), `${timestamp}.`, asBytes(body)))}`;
}
