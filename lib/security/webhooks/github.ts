import { verify } from "@octokit/webhooks-methods";
import type { VerifyContext } from "./support.ts";
import { asBytes, hmacSha256, refuse, strictUtf8, toHex } from "./support.ts";
import type { WebhookVerdict } from "./types.ts";

/*
 * GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` under the webhook secret taken as
 * UTF-8 text. GitHub signs no timestamp, so nothing here limits a replay in time: the receiver must
 * deduplicate on X-GitHub-Delivery, which stays the same when a delivery is redelivered.
 */

// GitHub writes lowercase hex; uppercase is accepted and lowered so the library compares like for like.
const SIGNATURE = /^sha256=([0-9a-fA-F]{64})$/;

export async function verifyGithub(context: VerifyContext): Promise<WebhookVerdict> {
  const header = context.headers.get("x-hub-signature-256");
  if (header === null) {
    return refuse(
      "missing_signature",
      "no X-Hub-Signature-256 header (is a secret set on the GitHub webhook?)",
    );
  }
  const match = SIGNATURE.exec(header.trim());
  if (!match) return refuse("malformed_signature", "X-Hub-Signature-256 is not sha256=<64 hex digits>");
  if (context.secrets.length === 0) return refuse("bad_signature", "no GitHub webhook secret is configured");
  // @octokit/webhooks-methods verifies text, not bytes, and refuses an empty payload.
  const text = strictUtf8(context.body);
  if (text === undefined) {
    return refuse(
      "bad_signature",
      "the body is not UTF-8; GitHub sends UTF-8 JSON, so it was not signed by GitHub",
    );
  }
  if (text.length === 0) return refuse("bad_signature", "the body is empty; GitHub always sends a JSON body");
  const signature = `sha256=${match[1]!.toLowerCase()}`;
  let matched = false;
  for (const secret of context.secrets) {
    if (await verify(secret, text, signature)) {
      matched = true;
      break;
    }
  }
  if (!matched) {
    return refuse(
      "bad_signature",
      `X-Hub-Signature-256 matches none of the ${context.secrets.length} secret(s)`,
    );
  }
  const deliveryId = context.headers.get("x-github-delivery")?.trim();
  if (!deliveryId) return refuse("missing_delivery_id", "no X-GitHub-Delivery header");
  const event = context.headers.get("x-github-event")?.trim();
  return { ok: true, scheme: "github", deliveryId, ...(event ? { event } : {}) };
}

/** The X-Hub-Signature-256 value GitHub would send for this body. */
export async function signGithub(secret: string, body: string | Uint8Array): Promise<string> {
  return `sha256=${toHex(await hmacSha256(asBytes(secret), asBytes(body)))}`;
}
