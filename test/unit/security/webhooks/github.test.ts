import { createHmac } from "node:crypto";
import { sign as octokitSign } from "@octokit/webhooks-methods";
import { describe, expect, it } from "vitest";
import { signGithub } from "../../../../lib/security/webhooks/mod.ts";
import { check, NOT_UTF8, outcome, without } from "./support.ts";

// GitHub's documentation gives this secret, payload and signature for testing an implementation
// ("Validating webhook deliveries", Testing the webhook payload validation).
const DOC_SECRET = "It's a Secret to Everybody";
const DOC_PAYLOAD = "Hello, World!";
const DOC_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

const SECRET = "a-github-webhook-secret";
const BODY = '{"ref":"refs/heads/main","after":"9d8c7b6a","repository":{"full_name":"example-org/fleet"}}';
const NOW = 1_764_115_200;

async function delivery(body: string | Uint8Array = BODY, secret = SECRET): Promise<Record<string, string>> {
  return {
    "x-github-delivery": "6c1f2a80-ca5b-11f0-8e4b-3a5c1d9e7f21",
    "x-github-event": "push",
    "x-hub-signature-256": await signGithub(secret, body),
  };
}

describe("GitHub X-Hub-Signature-256", () => {
  it("signs GitHub's documented test vector, as @octokit/webhooks-methods and node:crypto do", async () => {
    expect(await signGithub(DOC_SECRET, DOC_PAYLOAD)).toBe(DOC_SIGNATURE);
    expect(await octokitSign(DOC_SECRET, DOC_PAYLOAD)).toBe(DOC_SIGNATURE);
    expect(`sha256=${createHmac("sha256", DOC_SECRET).update(DOC_PAYLOAD).digest("hex")}`).toBe(
      DOC_SIGNATURE,
    );
  });

  it("accepts the documented vector and reports the delivery id and event, and no timestamp", async () => {
    const headers = {
      "x-hub-signature-256": DOC_SIGNATURE,
      "x-github-delivery": "d-1",
      "x-github-event": "ping",
    };
    const verdict = await check("github", { secrets: [DOC_SECRET] }, headers, DOC_PAYLOAD, NOW);
    expect(verdict).toEqual({ ok: true, scheme: "github", deliveryId: "d-1", event: "ping" });
  });

  it("has no clock to check: GitHub signs no timestamp, so a year later the same delivery still verifies", async () => {
    const verdict = await check("github", { secrets: [SECRET] }, await delivery(), BODY, NOW + 365 * 86_400);
    expect(outcome(verdict)).toBe("ok");
  });

  it("refuses a tampered body and a wrong secret", async () => {
    const headers = await delivery();
    expect(outcome(await check("github", { secrets: [SECRET] }, headers, `${BODY} `, NOW))).toBe(
      "bad_signature",
    );
    expect(outcome(await check("github", { secrets: ["another"] }, headers, BODY, NOW))).toBe(
      "bad_signature",
    );
  });

  it("accepts a delivery signed with any of the configured secrets while one is rotated", async () => {
    const headers = await delivery(BODY, "the-new-secret");
    const verdict = await check("github", { secrets: [SECRET, "the-new-secret"] }, headers, BODY, NOW);
    expect(outcome(verdict)).toBe("ok");
  });

  it("accepts uppercase hex, which GitHub does not send but which names the same MAC", async () => {
    const headers = await delivery();
    const upper = {
      ...headers,
      "x-hub-signature-256": `sha256=${headers["x-hub-signature-256"]!.slice(7).toUpperCase()}`,
    };
    expect(outcome(await check("github", { secrets: [SECRET] }, upper, BODY, NOW))).toBe("ok");
  });

  it("tells a missing signature from a garbled one, and needs the delivery id", async () => {
    const headers = await delivery();
    const run = (h: Record<string, string>) =>
      check("github", { secrets: [SECRET] }, h, BODY, NOW).then(outcome);
    expect(await run(without(headers, "x-hub-signature-256"))).toBe("missing_signature");
    expect(await run({ ...headers, "x-hub-signature-256": "sha1=0123" })).toBe("malformed_signature");
    expect(
      await run({ ...headers, "x-hub-signature-256": headers["x-hub-signature-256"]!.slice(0, -2) }),
    ).toBe("malformed_signature");
    expect(await run({ ...headers, "x-hub-signature-256": headers["x-hub-signature-256"]!.slice(7) })).toBe(
      "malformed_signature",
    );
    expect(await run(without(headers, "x-github-delivery"))).toBe("missing_delivery_id");
    const noEvent = await check(
      "github",
      { secrets: [SECRET] },
      without(headers, "x-github-event"),
      BODY,
      NOW,
    );
    expect(noEvent).toEqual({ ok: true, scheme: "github", deliveryId: headers["x-github-delivery"] });
  });

  it("refuses a body that is not UTF-8 or is empty, saying why, since the library verifies text", async () => {
    const notUtf8 = await check("github", { secrets: [SECRET] }, await delivery(NOT_UTF8), NOT_UTF8, NOW);
    expect(notUtf8).toMatchObject({
      ok: false,
      reason: "bad_signature",
      detail: expect.stringContaining("UTF-8"),
    });
    const empty = await check("github", { secrets: [SECRET] }, await delivery("x"), "", NOW);
    expect(empty).toMatchObject({
      ok: false,
      reason: "bad_signature",
      detail: expect.stringContaining("empty"),
    });
  });

  it("keeps a byte-order mark: the MAC is over the bytes as sent", async () => {
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(BODY)]);
    const headers = await delivery(withBom);
    expect(outcome(await check("github", { secrets: [SECRET] }, headers, withBom, NOW))).toBe("ok");
    expect(outcome(await check("github", { secrets: [SECRET] }, headers, BODY, NOW))).toBe("bad_signature");
  });

  it("fails closed with no secret configured, and never puts a secret in a detail", async () => {
    const headers = await delivery();
    expect(outcome(await check("github", {}, headers, BODY, NOW))).toBe("bad_signature");
    expect(outcome(await check("github", { secrets: [""] }, headers, BODY, NOW))).toBe("bad_signature");
    const refused = await check("github", { secrets: ["wrong-secret-value"] }, headers, BODY, NOW);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.detail).not.toContain("wrong-secret-value");
  });
});
