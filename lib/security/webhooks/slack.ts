import { constantTimeEqual } from "../mod.ts";
import type { VerifyContext } from "./support.ts";
import {
  asBytes,
  freshness,
  hmacSha256,
  jsonObject,
  parseUnixSeconds,
  refuse,
  sha256Hex,
  strictUtf8,
  stringField,
  toHex,
} from "./support.ts";
import type { WebhookVerdict } from "./types.ts";

/*
 * Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<X-Slack-Request-Timestamp>:<raw body>">` under the
 * app's signing secret taken as UTF-8 text; the timestamp must be within the tolerance (Slack suggests
 * five minutes).
 *
 * Slack puts no delivery id in the headers, so the id comes from the verified body:
 *  1. `event_id` of an Events API callback (JSON), which Slack keeps when it retries;
 *  2. else `trigger_id` of a slash command (form-encoded) or of an interaction (form-encoded with the
 *     JSON in its `payload` field);
 *  3. else `slack:<timestamp>:<first 32 hex digits of the body's SHA-256>`, which tells apart different
 *     requests but not a retry (Slack re-signs a retry with a new timestamp).
 * The event is the callback's `event.type` (or the body's `type`, such as url_verification), the slash
 * command's `command`, or the interaction payload's `type`.
 */

const SIGNATURE = /^v0=([0-9a-fA-F]{64})$/;
const FALLBACK_DIGEST_HEX_DIGITS = 32;

interface SlackIdentity {
  deliveryId?: string;
  event?: string;
}

function identify(text: string | undefined): SlackIdentity {
  if (text === undefined) return {};
  if (text.trimStart().startsWith("{")) {
    const callback = jsonObject(text);
    const inner = callback?.event;
    const innerType =
      typeof inner === "object" && inner !== null
        ? stringField(inner as Record<string, unknown>, "type")
        : undefined;
    return {
      deliveryId: stringField(callback, "event_id"),
      event: innerType ?? stringField(callback, "type"),
    };
  }
  const form = new URLSearchParams(text);
  const payload = form.get("payload");
  if (payload !== null) {
    const interaction = jsonObject(payload);
    return { deliveryId: stringField(interaction, "trigger_id"), event: stringField(interaction, "type") };
  }
  return { deliveryId: form.get("trigger_id") || undefined, event: form.get("command") || undefined };
}

export async function verifySlack(context: VerifyContext): Promise<WebhookVerdict> {
  const header = context.headers.get("x-slack-signature");
  if (header === null) return refuse("missing_signature", "no X-Slack-Signature header");
  const match = SIGNATURE.exec(header.trim());
  if (!match) return refuse("malformed_signature", "X-Slack-Signature is not v0=<64 hex digits>");
  const timestampText = context.headers.get("x-slack-request-timestamp")?.trim() ?? "";
  const timestamp = parseUnixSeconds(timestampText);
  if (timestamp === undefined) {
    return refuse("malformed_signature", "X-Slack-Request-Timestamp is missing or not Unix seconds");
  }
  const offered = match[1]!.toLowerCase();
  let matched = false;
  for (const secret of context.secrets) {
    const expected = toHex(await hmacSha256(asBytes(secret), `v0:${timestampText}:`, context.body));
    if (constantTimeEqual(offered, expected)) {
      matched = true;
      break;
    }
  }
  if (!matched) {
    return refuse(
      "bad_signature",
      `X-Slack-Signature matches none of the ${context.secrets.length} secret(s)`,
    );
  }
  const stale = freshness(timestamp, context);
  if (stale) return stale;
  const identity = identify(strictUtf8(context.body));
  const deliveryId =
    identity.deliveryId ??
    `slack:${timestampText}:${(await sha256Hex(context.body)).slice(0, FALLBACK_DIGEST_HEX_DIGITS)}`;
  return {
    ok: true,
    scheme: "slack",
    deliveryId,
    timestamp,
    ...(identity.event ? { event: identity.event } : {}),
  };
}

/** The X-Slack-Signature value Slack would send with `X-Slack-Request-Timestamp: <timestamp>`. */
export async function signSlack(
  secret: string,
  timestamp: number,
  body: string | Uint8Array,
): Promise<string> {
  return `v0=${toHex(await hmacSha256(asBytes(secret), `v0:${timestamp}:`, asBytes(body)))}`;
}
