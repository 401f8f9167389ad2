import { verifyGithub } from "./github.ts";
import { verifySlack } from "./slack.ts";
import { verifyStandardWebhook } from "./standard.ts";
import { verifyStripe } from "./stripe.ts";
import type { VerifyContext } from "./support.ts";
import type {
  WebhookRequestParts,
  WebhookScheme,
  WebhookSecrets,
  WebhookVerdict,
  WebhookVerifyOptions,
} from "./types.ts";
import { DEFAULT_TOLERANCE_SECONDS } from "./types.ts";

const VERIFIERS: Record<WebhookScheme, (context: VerifyContext) => Promise<WebhookVerdict>> = {
  github: verifyGithub,
  "standard-webhooks": verifyStandardWebhook,
  slack: verifySlack,
  stripe: verifyStripe,
};

/**
 * Decides whether `request` was signed by the sender `scheme` names with one of `secrets`, and if so
 * which delivery it is. Never throws on what a request carries; an authentic but old (or future) request
 * is refused as `stale`, and one without a delivery id as `missing_delivery_id`.
 */
export function verifyWebhook(
  scheme: WebhookScheme,
  secrets: WebhookSecrets,
  request: WebhookRequestParts,
  options: WebhookVerifyOptions,
): Promise<WebhookVerdict> {
  return VERIFIERS[scheme]({
    secrets: (secrets.secrets ?? []).filter((secret) => secret.length > 0),
    publicKeys: (secrets.publicKeys ?? []).filter((key) => key.length > 0),
    headers: request.headers,
    body: request.body,
    nowSeconds: Math.floor(options.now.getTime() / 1000),
    toleranceSeconds: options.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS,
  });
}
