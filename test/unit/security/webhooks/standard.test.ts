import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { signStandardV1, signStandardV1a, standardPublicKey } from "../../../../lib/security/webhooks/mod.ts";
import { check, NOT_UTF8, outcome, without } from "./support.ts";

// The example the standardwebhooks JavaScript library signs in its own tests ("sign function works"); the
// spec itself publishes no secret with its example. lib/results/jobs/webhook.ts checks the same vector.
const LIB_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const LIB_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const LIB_TIMESTAMP = 1614265330;
const LIB_PAYLOAD = '{"test": 2432232314}';
const LIB_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const OTHER_SECRET = "whsec_Y2hvcmlhLWVkZ2UgZml4dHVyZSBzdGQgd2ViaG9va3M=";
const BODY = '{"type":"invoice.paid","timestamp":"2025-11-26T00:00:00Z","data":{"id":"inv_1"}}';
const ID = "msg_2pInvoicePaid";
const NOW = 1_764_115_200;

async function ed25519Keys(): Promise<{ privateKey: CryptoKey; publicKey: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
  return { privateKey: pair.privateKey, publicKey: await standardPublicKey(pair.publicKey) };
}

function headers(signature: string, id = ID, timestamp = NOW): Record<string, string> {
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
}

describe("Standard Webhooks v1 (HMAC)", () => {
  it("signs the library's published example the same way the library does", async () => {
    expect(await signStandardV1(LIB_SECRET, LIB_ID, LIB_TIMESTAMP, LIB_PAYLOAD)).toBe(LIB_SIGNATURE);
    expect(new Webhook(LIB_SECRET).sign(LIB_ID, new Date(LIB_TIMESTAMP * 1000), LIB_PAYLOAD)).toBe(
      LIB_SIGNATURE,
    );
  });

  it("accepts the example at its own time and reports the id and timestamp", async () => {
    const verdict = await check(
      "standard-webhooks",
      { secrets: [LIB_SECRET] },
      headers(LIB_SIGNATURE, LIB_ID, LIB_TIMESTAMP),
      LIB_PAYLOAD,
      LIB_TIMESTAMP,
    );
    expect(verdict).toEqual({
      ok: true,
      scheme: "standard-webhooks",
      deliveryId: LIB_ID,
      timestamp: LIB_TIMESTAMP,
    });
  });

  it("is accepted by the library's own verify when signed now by our sender side", async () => {
    const now = Math.floor(Date.now() / 1000);
    const signature = await signStandardV1(OTHER_SECRET, ID, now, BODY);
    expect(new Webhook(OTHER_SECRET).verify(BODY, headers(signature, ID, now))).toEqual(JSON.parse(BODY));
  });

  it("refuses a tampered body, id or timestamp and a wrong secret", async () => {
    const signature = await signStandardV1(OTHER_SECRET, ID, NOW, BODY);
    const run = (h: Record<string, string>, body = BODY, secret = OTHER_SECRET) =>
      check("standard-webhooks", { secrets: [secret] }, h, body, NOW).then(outcome);
    expect(await run(headers(signature))).toBe("ok");
    expect(await run(headers(signature), BODY.replace("inv_1", "inv_2"))).toBe("bad_signature");
    expect(await run(headers(signature, "msg_other"))).toBe("bad_signature");
    expect(await run(headers(signature, ID, NOW + 1))).toBe("bad_signature");
    expect(await run(headers(signature), BODY, LIB_SECRET)).toBe("bad_signature");
  });

  it("accepts any matching entry among several, under any configured secret", async () => {
    const current = await signStandardV1(OTHER_SECRET, ID, NOW, BODY);
    const retired = await signStandardV1(LIB_SECRET, ID, NOW, BODY);
    const several = `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,whatever ${current}`;
    expect(
      outcome(await check("standard-webhooks", { secrets: [OTHER_SECRET] }, headers(several), BODY, NOW)),
    ).toBe("ok");
    // The receiver rotates: its first secret is the retired one, the second matches.
    expect(
      outcome(
        await check(
          "standard-webhooks",
          { secrets: [LIB_SECRET, OTHER_SECRET] },
          headers(current),
          BODY,
          NOW,
        ),
      ),
    ).toBe("ok");
    // The sender rotates: it signs with both, the receiver knows only the old one.
    expect(
      outcome(
        await check(
          "standard-webhooks",
          { secrets: [LIB_SECRET] },
          headers(`${current} ${retired}`),
          BODY,
          NOW,
        ),
      ),
    ).toBe("ok");
  });

  it("skips a configured secret that is not whsec_<base64> instead of failing on it", async () => {
    const signature = await signStandardV1(OTHER_SECRET, ID, NOW, BODY);
    const secrets = { secrets: ["whsec_not base64!", OTHER_SECRET] };
    expect(outcome(await check("standard-webhooks", secrets, headers(signature), BODY, NOW))).toBe("ok");
  });

  it("refuses stale and future timestamps outside the tolerance, and honours a custom tolerance", async () => {
    const signature = await signStandardV1(OTHER_SECRET, ID, NOW, BODY);
    const at = (now: number, toleranceSeconds?: number) =>
      check("standard-webhooks", { secrets: [OTHER_SECRET] }, headers(signature), BODY, now, {
        ...(toleranceSeconds === undefined ? {} : { toleranceSeconds }),
      });
    expect(outcome(await at(NOW + 300))).toBe("ok");
    expect(outcome(await at(NOW - 300))).toBe("ok");
    const stale = await at(NOW + 301);
    expect(stale).toMatchObject({ ok: false, reason: "stale", detail: expect.stringContaining("301 s old") });
    const future = await at(NOW - 301);
    expect(future).toMatchObject({
      ok: false,
      reason: "stale",
      detail: expect.stringContaining("in the future"),
    });
    expect(outcome(await at(NOW + 30, 10))).toBe("stale");
  });

  it("tells missing, garbled and partial headers apart", async () => {
    const good = headers(await signStandardV1(OTHER_SECRET, ID, NOW, BODY));
    const run = (h: Record<string, string>) =>
      check("standard-webhooks", { secrets: [OTHER_SECRET] }, h, BODY, NOW).then(outcome);
    expect(await run(without(good, "webhook-signature"))).toBe("missing_signature");
    expect(await run(without(good, "webhook-id"))).toBe("missing_delivery_id");
    expect(await run(without(good, "webhook-timestamp"))).toBe("malformed_signature");
    expect(await run({ ...good, "webhook-timestamp": "hello" })).toBe("malformed_signature");
    expect(await run({ ...good, "webhook-timestamp": `0${NOW}` })).toBe("malformed_signature");
    expect(await run({ ...good, "webhook-signature": "v1," })).toBe("malformed_signature");
    expect(await run({ ...good, "webhook-signature": good["webhook-signature"]!.slice(0, 8) })).toBe(
      "malformed_signature",
    );
    expect(await run({ ...good, "webhook-signature": "v2,abc v1a,short" })).toBe("malformed_signature");
    expect(await run({ ...good, "webhook-id": "msg.1" })).toBe("malformed_signature");
  });

  it("reads the svix-* names Svix sends when the webhook-* ones are absent", async () => {
    const good = headers(await signStandardV1(OTHER_SECRET, ID, NOW, BODY));
    const svix = {
      "svix-id": good["webhook-id"]!,
      "svix-timestamp": good["webhook-timestamp"]!,
      "svix-signature": good["webhook-signature"]!,
    };
    const verdict = await check("standard-webhooks", { secrets: [OTHER_SECRET] }, svix, BODY, NOW);
    expect(verdict).toMatchObject({ ok: true, deliveryId: ID });
  });

  it("cannot check v1 over a body that is not UTF-8 (the library signs text) and says so", async () => {
    const signature = await signStandardV1(OTHER_SECRET, ID, NOW, NOT_UTF8);
    const verdict = await check(
      "standard-webhooks",
      { secrets: [OTHER_SECRET] },
      headers(signature),
      NOT_UTF8,
      NOW,
    );
    expect(verdict).toMatchObject({
      ok: false,
      reason: "bad_signature",
      detail: expect.stringContaining("UTF-8"),
    });
  });
});

describe("Standard Webhooks v1a (ed25519)", () => {
  it("accepts a v1a signature under the configured public key, alone or beside a v1 entry", async () => {
    const keys = await ed25519Keys();
    const v1a = await signStandardV1a(keys.privateKey, ID, NOW, BODY);
    const v1 = await signStandardV1(OTHER_SECRET, ID, NOW, BODY);
    const publicOnly = { publicKeys: [keys.publicKey] };
    expect(await check("standard-webhooks", publicOnly, headers(v1a), BODY, NOW)).toEqual({
      ok: true,
      scheme: "standard-webhooks",
      deliveryId: ID,
      timestamp: NOW,
    });
    expect(outcome(await check("standard-webhooks", publicOnly, headers(`${v1} ${v1a}`), BODY, NOW))).toBe(
      "ok",
    );
    // A receiver with only the HMAC secret still accepts the same delivery by its v1 entry.
    const secretOnly = { secrets: [OTHER_SECRET] };
    expect(outcome(await check("standard-webhooks", secretOnly, headers(`${v1a} ${v1}`), BODY, NOW))).toBe(
      "ok",
    );
  });

  it("refuses a v1a signature made with another key, and one over a tampered body", async () => {
    const signer = await ed25519Keys();
    const stranger = await ed25519Keys();
    const v1a = await signStandardV1a(signer.privateKey, ID, NOW, BODY);
    const refused = await check(
      "standard-webhooks",
      { publicKeys: [stranger.publicKey] },
      headers(v1a),
      BODY,
      NOW,
    );
    expect(refused).toMatchObject({
      ok: false,
      reason: "bad_signature",
      detail: expect.stringContaining("1 v1a"),
    });
    expect(
      outcome(
        await check("standard-webhooks", { publicKeys: [signer.publicKey] }, headers(v1a), `${BODY}\n`, NOW),
      ),
    ).toBe("bad_signature");
  });

  it("tries every configured public key, skipping ones that are not 32-byte whpk_ keys", async () => {
    const old = await ed25519Keys();
    const current = await ed25519Keys();
    const v1a = await signStandardV1a(current.privateKey, ID, NOW, BODY);
    const publicKeys = ["whpk_AAAA", old.publicKey, current.publicKey];
    expect(outcome(await check("standard-webhooks", { publicKeys }, headers(v1a), BODY, NOW))).toBe("ok");
  });

  it("verifies v1a over the raw bytes, so a body that is not UTF-8 still verifies", async () => {
    const keys = await ed25519Keys();
    const v1a = await signStandardV1a(keys.privateKey, ID, NOW, NOT_UTF8);
    const verdict = await check(
      "standard-webhooks",
      { publicKeys: [keys.publicKey] },
      headers(v1a),
      NOT_UTF8,
      NOW,
    );
    expect(outcome(verdict)).toBe("ok");
  });

  it("still checks the clock after a valid v1a signature", async () => {
    const keys = await ed25519Keys();
    const v1a = await signStandardV1a(keys.privateKey, ID, NOW, BODY);
    const verdict = await check(
      "standard-webhooks",
      { publicKeys: [keys.publicKey] },
      headers(v1a),
      BODY,
      NOW + 900,
    );
    expect(outcome(verdict)).toBe("stale");
  });
});
