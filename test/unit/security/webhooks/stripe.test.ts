import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signStripe } from "../../../../lib/security/webhooks/mod.ts";
import { check, outcome, without } from "./support.ts";

// Stripe publishes no test vector. These are generated with the documented algorithm: hex HMAC-SHA256 of
// `<t>.<raw body>`, keyed with the endpoint secret string as shown in the dashboard, whsec_ included.
const SECRET = "whsec_choriaEdgeTestEndpointSecret";
const NOW = 1_764_115_200;
const BODY = JSON.stringify(
  { id: "evt_1QnX", object: "event", type: "payment_intent.succeeded", data: { object: { id: "pi_1QnX" } } },
  null,
  2,
);

function hmacHex(key: string | Uint8Array, text: string): string {
  return createHmac("sha256", key).update(text).digest("hex");
}

describe("Stripe-Signature", () => {
  it("is t=<timestamp>,v1=<hex HMAC of '<t>.<body>'> keyed with the whole whsec_ string", async () => {
    const header = await signStripe(SECRET, NOW, BODY);
    expect(header).toBe(`t=${NOW},v1=${hmacHex(SECRET, `${NOW}.${BODY}`)}`);
    // Not the base64-decoded tail, which is what a Standard Webhooks whsec_ secret would mean.
    const decodedTail = Uint8Array.from(atob("choriaEdgeTestEndpointSecret"), (c) => c.charCodeAt(0));
    expect(header).not.toContain(hmacHex(decodedTail, `${NOW}.${BODY}`));
  });

  it("accepts a signed event and reports the event id, type and timestamp", async () => {
    const headers = { "stripe-signature": await signStripe(SECRET, NOW, BODY) };
    expect(await check("stripe", { secrets: [SECRET] }, headers, BODY, NOW + 2)).toEqual({
      ok: true,
      scheme: "stripe",
      deliveryId: "evt_1QnX",
      event: "payment_intent.succeeded",
      timestamp: NOW,
    });
  });

  it("refuses a tampered body, a changed t and a wrong secret", async () => {
    const header = await signStripe(SECRET, NOW, BODY);
    const run = (value: string, body = BODY, secret = SECRET) =>
      check("stripe", { secrets: [secret] }, { "stripe-signature": value }, body, NOW).then(outcome);
    expect(await run(header, BODY.replace("pi_1QnX", "pi_2QnX"))).toBe("bad_signature");
    expect(await run(header.replace(`t=${NOW}`, `t=${NOW + 1}`))).toBe("bad_signature");
    expect(await run(header, BODY, "whsec_somethingElse")).toBe("bad_signature");
  });

  it("accepts any of several v1 entries (Stripe rotating) and any configured secret (us rotating)", async () => {
    const retired = (await signStripe("whsec_retired", NOW, BODY)).split(",")[1]!;
    const current = (await signStripe(SECRET, NOW, BODY)).split(",")[1]!;
    const both = `t=${NOW},${retired},${current},v0=${"0".repeat(64)}`;
    expect(
      outcome(await check("stripe", { secrets: [SECRET] }, { "stripe-signature": both }, BODY, NOW)),
    ).toBe("ok");
    const single = { "stripe-signature": await signStripe(SECRET, NOW, BODY) };
    expect(outcome(await check("stripe", { secrets: ["whsec_retired", SECRET] }, single, BODY, NOW))).toBe(
      "ok",
    );
  });

  it("ignores v0 entries: a header with only v0 carries no signature we check", async () => {
    const v0Only = `t=${NOW},v0=${hmacHex(SECRET, `${NOW}.${BODY}`)}`;
    const verdict = await check("stripe", { secrets: [SECRET] }, { "stripe-signature": v0Only }, BODY, NOW);
    expect(outcome(verdict)).toBe("malformed_signature");
  });

  it("refuses stale and future timestamps outside the 300 s tolerance", async () => {
    const headers = { "stripe-signature": await signStripe(SECRET, NOW, BODY) };
    const at = (now: number) => check("stripe", { secrets: [SECRET] }, headers, BODY, now).then(outcome);
    expect(await at(NOW + 300)).toBe("ok");
    expect(await at(NOW + 301)).toBe("stale");
    expect(await at(NOW - 301)).toBe("stale");
  });

  it("tells missing and garbled headers apart", async () => {
    const header = await signStripe(SECRET, NOW, BODY);
    const run = (headers: Record<string, string>) =>
      check("stripe", { secrets: [SECRET] }, headers, BODY, NOW).then(outcome);
    expect(await run(without({ "stripe-signature": header }, "stripe-signature"))).toBe("missing_signature");
    expect(await run({ "stripe-signature": header.split(",")[1]! })).toBe("malformed_signature");
    expect(await run({ "stripe-signature": `t=${NOW},t=${NOW + 1},${header.split(",")[1]}` })).toBe(
      "malformed_signature",
    );
    expect(await run({ "stripe-signature": `t=soon,${header.split(",")[1]}` })).toBe("malformed_signature");
    expect(await run({ "stripe-signature": `t=${NOW},v1=abcdef` })).toBe("malformed_signature");
    expect(await run({ "stripe-signature": "garbage" })).toBe("malformed_signature");
  });

  it("needs the event id from the verified body", async () => {
    const body = '{"object":"event","type":"payment_intent.succeeded"}';
    const headers = { "stripe-signature": await signStripe(SECRET, NOW, body) };
    expect(outcome(await check("stripe", { secrets: [SECRET] }, headers, body, NOW))).toBe(
      "missing_delivery_id",
    );
    const notJson = "evt_1QnX";
    const plain = { "stripe-signature": await signStripe(SECRET, NOW, notJson) };
    expect(outcome(await check("stripe", { secrets: [SECRET] }, plain, notJson, NOW))).toBe(
      "missing_delivery_id",
    );
  });
});
