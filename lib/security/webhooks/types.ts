export const WEBHOOK_SCHEMES = ["github", "standard-webhooks", "slack", "stripe"] as const;
export type WebhookScheme = (typeof WEBHOOK_SCHEMES)[number];

export function isWebhookScheme(value: string): value is WebhookScheme {
  return (WEBHOOK_SCHEMES as readonly string[]).includes(value);
}

export interface WebhookSecrets {
  /**
   * Shared secrets, several while one is rotated out: a GitHub webhook secret, a Standard Webhooks
   * `whsec_<base64>`, a Slack signing secret or a Stripe endpoint secret `whsec_...`. Any one may match.
   */
  secrets?: string[];
  /** Standard Webhooks `v1a`: ed25519 public keys written `whpk_<base64 of the raw 32 bytes>`. */
  publicKeys?: string[];
}

/** What a runtime adapter hands over: the headers and the body bytes exactly as received. */
export interface WebhookRequestParts {
  headers: Headers;
  body: Uint8Array;
}

export interface WebhookVerifyOptions {
  /** The receiver's clock; passed in so verification is a function of its inputs. */
  now: Date;
  /** How far a signed timestamp may stray from `now`, either way. Default 300 s. */
  toleranceSeconds?: number;
}

export type WebhookRefusalReason =
  | "missing_signature"
  | "malformed_signature"
  | "bad_signature"
  | "stale"
  | "missing_delivery_id";

interface WebhookAcceptance {
  ok: true;
  scheme: WebhookScheme;
  /** The sender's id for this delivery, the same on every retry: the key to deduplicate on. */
  deliveryId: string;
  /** The sender's event type, when it names one. */
  event?: string;
  /** The signed timestamp in Unix seconds; absent for GitHub, which signs none. */
  timestamp?: number;
}

export interface WebhookRefusal {
  ok: false;
  reason: WebhookRefusalReason;
  /** For logs and problem documents: never contains a secret or an echoed header value. */
  detail: string;
}

export type WebhookVerdict = WebhookAcceptance | WebhookRefusal;

export const DEFAULT_TOLERANCE_SECONDS = 300;
