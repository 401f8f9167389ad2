// The public surface of lib/security/webhooks. Import from here, not from the files.
export { signGithub } from "./github.ts";
export { webhookSecretsProblems } from "./secrets.ts";
export { signSlack } from "./slack.ts";
export { signStandardV1, signStandardV1a, standardPublicKey } from "./standard.ts";
export { signStripe } from "./stripe.ts";
export {
  isWebhookScheme,
  WEBHOOK_SCHEMES,
  type WebhookRefusalReason,
  type WebhookScheme,
  type WebhookSecrets,
  type WebhookVerdict,
  type WebhookVerifyOptions,
} from "./types.ts";
export { verifyWebhook } from "./verify.ts";
