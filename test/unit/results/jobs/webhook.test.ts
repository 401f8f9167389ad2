import { describe, expect, it } from "vitest";
import { newWebhookSecret, webhookHeaders } from "../../../../lib/results/jobs/webhook.ts";
import { verifyWebhook } from "../../../../lib/security/webhooks/mod.ts";

// The example the Standard Webhooks reference libraries sign in their tests (the verifier's own tests in
// test/unit/security/webhooks check it from the receiving side).
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP = 1614265330;
const PAYLOAD = '{"test": 2432232314}';
const SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

describe("completion callback signatures", () => {
  it("sign the published example to the published signature", async () => {
    const headers = await webhookHeaders(SECRET, ID, PAYLOAD, TIMESTAMP * 1000 + 999);
    expect(headers).toEqual({
      "webhook-id": ID,
      "webhook-timestamp": String(TIMESTAMP),
      "webhook-signature": SIGNATURE,
    });
  });

  it("carry each attempt's own timestamp, and verify as Standard Webhooks at that time only", async () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const at = Date.UTC(2026, 0, 1, 12, 0, 0, 900);
    const body = new TextEncoder().encode("{}");
    const headers = new Headers({ ...(await webhookHeaders(secret, "job_x", "{}", at)) });
    const verify = (nowMs: number, key = secret) =>
      verifyWebhook("standard-webhooks", { secrets: [key] }, { headers, body }, { now: new Date(nowMs) });
    expect(await verify(at)).toMatchObject({ ok: true, deliveryId: "job_x" });
    expect(await verify(at + 301_000)).toMatchObject({ ok: false, reason: "stale" });
    expect(await verify(at, newWebhookSecret())).toMatchObject({ ok: false, reason: "bad_signature" });
  });

  it("refuse to sign with a secret that is not base64", async () => {
    await expect(webhookHeaders("whsec_not base64!", ID, PAYLOAD, 0)).rejects.toThrow(/whsec_/);
  });
});
