import { describe, expect, it } from "vitest";
import {
  isWebhookScheme,
  signGithub,
  signSlack,
  signStandardV1,
  signStripe,
  WEBHOOK_SCHEMES,
  type WebhookScheme,
} from "../../../../lib/security/webhooks/mod.ts";
import { check, outcome } from "./support.ts";

const NOW = 1_764_115_200;
const BODY = '{"id":"evt_1","event_id":"Ev1","type":"x"}';

const SIGNED: Record<
  WebhookScheme,
  { secret: string; headers: (secret: string) => Promise<Record<string, string>> }
> = {
  github: {
    secret: "github-secret-value",
    headers: async (secret) => ({
      "x-hub-signature-256": await signGithub(secret, BODY),
      "x-github-delivery": "d",
    }),
  },
  "standard-webhooks": {
    secret: "whsec_c3RhbmRhcmQtd2ViaG9va3Mtc2VjcmV0LXZhbHVl",
    headers: async (secret) => ({
      "webhook-id": "msg_1",
      "webhook-timestamp": String(NOW),
      "webhook-signature": await signStandardV1(secret, "msg_1", NOW, BODY),
    }),
  },
  slack: {
    secret: "slack-secret-value",
    headers: async (secret) => ({
      "x-slack-request-timestamp": String(NOW),
      "x-slack-signature": await signSlack(secret, NOW, BODY),
    }),
  },
  stripe: {
    secret: "whsec_stripeSecretValue",
    headers: async (secret) => ({ "stripe-signature": await signStripe(secret, NOW, BODY) }),
  },
};

describe("verifyWebhook", () => {
  it("names exactly the four senders it verifies", () => {
    expect(WEBHOOK_SCHEMES).toEqual(["github", "standard-webhooks", "slack", "stripe"]);
    expect(isWebhookScheme("stripe")).toBe(true);
    expect(isWebhookScheme("rfc9421")).toBe(false);
  });

  it.each(WEBHOOK_SCHEMES)("%s: accepts its own signature and refuses another sender's", async (scheme) => {
    const { secret, headers } = SIGNED[scheme];
    expect(outcome(await check(scheme, { secrets: [secret] }, await headers(secret), BODY, NOW))).toBe("ok");
    for (const other of WEBHOOK_SCHEMES.filter((s) => s !== scheme)) {
      const verdict = await check(
        scheme,
        { secrets: [secret] },
        await SIGNED[other].headers(SIGNED[other].secret),
        BODY,
        NOW,
      );
      expect(outcome(verdict), `${other} headers`).toBe("missing_signature");
    }
  });

  it.each(WEBHOOK_SCHEMES)(
    "%s: a refusal names neither the configured nor the signing secret",
    async (scheme) => {
      const { secret, headers } = SIGNED[scheme];
      const configured = SIGNED[scheme === "github" ? "slack" : "github"].secret;
      const verdict = await check(scheme, { secrets: [configured] }, await headers(secret), BODY, NOW);
      expect(verdict.ok).toBe(false);
      if (!verdict.ok) {
        expect(verdict.detail).not.toContain(configured);
        expect(verdict.detail).not.toContain(secret);
      }
    },
  );

  it.each(WEBHOOK_SCHEMES.filter((s) => s !== "github"))(
    "%s: a clock that is not a time refuses",
    async (scheme) => {
      const { secret, headers } = SIGNED[scheme];
      const verdict = await check(scheme, { secrets: [secret] }, await headers(secret), BODY, Number.NaN);
      expect(outcome(verdict)).toBe("stale");
    },
  );
});
