import { describe, expect, it } from "vitest";
import {
  newWebhookSecret,
  signWebhook,
  verifyWebhook,
  webhookHeaders,
  webhookSecretBytes,
} from "../../../../lib/results/jobs/webhook.ts";

// The example the Standard Webhooks reference libraries sign in their tests.
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP = 1614265330;
const PAYLOAD = '{"test": 2432232314}';
const SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const headersOf = (record: Record<string, string>) => new Headers(record);

describe("Standard Webhooks signatures", () => {
  it("sign the published example to the published signature, with or without the whsec_ prefix", async () => {
    expect(await signWebhook(SECRET, ID, TIMESTAMP, PAYLOAD)).toBe(SIGNATURE);
    expect(await signWebhook(SECRET.slice("whsec_".length), ID, TIMESTAMP, PAYLOAD)).toBe(SIGNATURE);
  });

  it("a receiver accepts the example at its time, and among other signatures", async () => {
    const now = TIMESTAMP * 1000;
    const headers = {
      "webhook-id": ID,
      "webhook-timestamp": String(TIMESTAMP),
      "webhook-signature": SIGNATURE,
    };
    expect(await verifyWebhook(SECRET, headersOf(headers), PAYLOAD, now)).toBe(true);
    const several = `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,abc ${SIGNATURE}`;
    expect(
      await verifyWebhook(SECRET, headersOf({ ...headers, "webhook-signature": several }), PAYLOAD, now),
    ).toBe(true);
  });

  it("a receiver refuses a changed body, id or timestamp, a stale or future time, and a wrong secret", async () => {
    const now = TIMESTAMP * 1000;
    const headers = {
      "webhook-id": ID,
      "webhook-timestamp": String(TIMESTAMP),
      "webhook-signature": SIGNATURE,
    };
    const check = (h: Record<string, string>, body = PAYLOAD, at = now, secret = SECRET) =>
      verifyWebhook(secret, headersOf(h), body, at);
    expect(await check(headers, '{"test": 2432232315}')).toBe(false);
    expect(await check({ ...headers, "webhook-id": "msg_other" })).toBe(false);
    expect(await check({ ...headers, "webhook-timestamp": String(TIMESTAMP + 1) }, PAYLOAD, now + 1000)).toBe(
      false,
    );
    expect(await check(headers, PAYLOAD, now + 301_000)).toBe(false);
    expect(await check(headers, PAYLOAD, now - 301_000)).toBe(false);
    expect(await check(headers, PAYLOAD, now, newWebhookSecret())).toBe(false);
    expect(await check({ ...headers, "webhook-signature": "v1," })).toBe(false);
    expect(await check({ ...headers, "webhook-timestamp": "hello" })).toBe(false);
    const { "webhook-id": _id, ...noId } = headers;
    expect(await check(noId)).toBe(false);
  });

  it("headers for an attempt carry its own timestamp and verify at that time", async () => {
    const secret = newWebhookSecret();
    expect(webhookSecretBytes(secret)?.byteLength).toBe(32);
    const at = Date.UTC(2026, 0, 1, 12, 0, 0, 900);
    const headers = await webhookHeaders(secret, "job_x", "{}", at);
    expect(headers["webhook-timestamp"]).toBe(String(Math.floor(at / 1000)));
    expect(await verifyWebhook(secret, headersOf({ ...headers }), "{}", at)).toBe(true);
  });

  it("refuses to sign with a secret that is not base64, or an id containing a dot", async () => {
    await expect(signWebhook("whsec_not base64!", ID, TIMESTAMP, PAYLOAD)).rejects.toThrow(/whsec_/);
    await expect(signWebhook(SECRET, "a.b", TIMESTAMP, PAYLOAD)).rejects.toThrow(/'\.'/);
  });
});
