import { standardSecretsProblems } from "./standard.ts";
import type { WebhookScheme, WebhookSecrets } from "./types.ts";

/**
 * What is wrong with the key material configured for a sender, as messages that name positions but
 * never values; empty when it can verify. verifyWebhook skips material it cannot use and refuses what
 * nothing matches, so a configuration loader should call this to fail at start-up instead.
 */
export function webhookSecretsProblems(scheme: WebhookScheme, material: WebhookSecrets): string[] {
  const secrets = material.secrets ?? [];
  const publicKeys = material.publicKeys ?? [];
  const blanks = secrets.flatMap((secret, i) => (secret.length === 0 ? [`secrets[${i}] is empty`] : []));
  if (scheme === "standard-webhooks") {
    if (secrets.length + publicKeys.length === 0)
      return ["a Standard Webhooks sender needs secrets or publicKeys"];
    return [
      ...blanks,
      ...standardSecretsProblems(
        secrets.filter((secret) => secret.length > 0),
        publicKeys,
      ),
    ];
  }
  const problems = [...blanks];
  if (secrets.length === 0) problems.push(`a ${scheme} sender needs at least one secret`);
  if (publicKeys.length > 0)
    problems.push(`a ${scheme} sender signs with shared secrets only: publicKeys are not used`);
  if (scheme === "stripe") {
    secrets.forEach((secret, i) => {
      if (secret.length > 0 && !secret.startsWith("whsec_")) {
        problems.push(`secrets[${i}] is not a Stripe endpoint secret (those start with whsec_)`);
      }
    });
  }
  return problems;
}
