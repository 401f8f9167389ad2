import { describe, expect, it } from "vitest";
import { signSlack } from "../../../../lib/security/webhooks/mod.ts";
import { check, outcome, without } from "./support.ts";

// The example in Slack's "Verifying requests from Slack": a slash command body, its timestamp, the
// documentation's signing secret and the signature Slack computes for them.
const DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const DOC_TIMESTAMP = 1531420618;
const DOC_BODY =
  "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar" +
  "&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com" +
  "%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN" +
  "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

const SECRET = "0c4f1e5b9a7d3c2e8f6a4b1d9e7c5a3f";
const NOW = 1_764_115_200;
const EVENT_BODY =
  '{"type":"event_callback","event_id":"Ev0ABC","event":{"type":"app_mention","text":"<@U0BOT> status"}}';

async function signed(body: string, secret = SECRET, timestamp = NOW): Promise<Record<string, string>> {
  return {
    "x-slack-request-timestamp": String(timestamp),
    "x-slack-signature": await signSlack(secret, timestamp, body),
  };
}

describe("Slack v0 signatures", () => {
  it("signs Slack's documented example to the documented signature", async () => {
    expect(await signSlack(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY)).toBe(DOC_SIGNATURE);
  });

  it("accepts the documented example at its time; the slash command's trigger_id is the delivery id", async () => {
    const headers = {
      "x-slack-request-timestamp": String(DOC_TIMESTAMP),
      "x-slack-signature": DOC_SIGNATURE,
    };
    const verdict = await check("slack", { secrets: [DOC_SECRET] }, headers, DOC_BODY, DOC_TIMESTAMP + 5);
    expect(verdict).toEqual({
      ok: true,
      scheme: "slack",
      deliveryId: "398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
      event: "/webhook-collect",
      timestamp: DOC_TIMESTAMP,
    });
  });

  it("refuses a tampered body, a changed timestamp and a wrong secret", async () => {
    const headers = await signed(EVENT_BODY);
    const run = (h: Record<string, string>, body = EVENT_BODY, secret = SECRET) =>
      check("slack", { secrets: [secret] }, h, body, NOW).then(outcome);
    expect(await run(headers)).toBe("ok");
    expect(await run(headers, EVENT_BODY.replace("status", "reboot"))).toBe("bad_signature");
    expect(await run({ ...headers, "x-slack-request-timestamp": String(NOW - 1) })).toBe("bad_signature");
    expect(await run(headers, EVENT_BODY, DOC_SECRET)).toBe("bad_signature");
  });

  it("accepts a request signed with the second of two configured secrets", async () => {
    const headers = await signed(EVENT_BODY, "the-rotated-in-secret");
    const verdict = await check(
      "slack",
      { secrets: [SECRET, "the-rotated-in-secret"] },
      headers,
      EVENT_BODY,
      NOW,
    );
    expect(outcome(verdict)).toBe("ok");
  });

  it("refuses stale and future timestamps, after checking the signature", async () => {
    const headers = await signed(EVENT_BODY);
    const at = (now: number) => check("slack", { secrets: [SECRET] }, headers, EVENT_BODY, now).then(outcome);
    expect(await at(NOW + 300)).toBe("ok");
    expect(await at(NOW + 301)).toBe("stale");
    expect(await at(NOW - 301)).toBe("stale");
    // A forged request is a forgery whatever its age.
    const forged = await check("slack", { secrets: ["other"] }, headers, EVENT_BODY, NOW + 3600);
    expect(outcome(forged)).toBe("bad_signature");
  });

  it("tells missing and garbled headers apart", async () => {
    const headers = await signed(EVENT_BODY);
    const run = (h: Record<string, string>) =>
      check("slack", { secrets: [SECRET] }, h, EVENT_BODY, NOW).then(outcome);
    expect(await run(without(headers, "x-slack-signature"))).toBe("missing_signature");
    expect(await run(without(headers, "x-slack-request-timestamp"))).toBe("malformed_signature");
    expect(await run({ ...headers, "x-slack-request-timestamp": "yesterday" })).toBe("malformed_signature");
    expect(
      await run({ ...headers, "x-slack-signature": headers["x-slack-signature"]!.replace("v0=", "v1=") }),
    ).toBe("malformed_signature");
    expect(await run({ ...headers, "x-slack-signature": "v0=abc" })).toBe("malformed_signature");
  });
});

describe("Slack delivery ids", () => {
  const verdictFor = async (body: string) =>
    check("slack", { secrets: [SECRET] }, await signed(body), body, NOW);

  it("takes event_id and event.type from an Events API callback", async () => {
    expect(await verdictFor(EVENT_BODY)).toMatchObject({
      ok: true,
      deliveryId: "Ev0ABC",
      event: "app_mention",
    });
  });

  it("takes trigger_id and type from an interaction's payload field", async () => {
    const payload = JSON.stringify({ type: "block_actions", trigger_id: "1234.5678.abcd", actions: [] });
    const body = new URLSearchParams({ payload }).toString();
    expect(await verdictFor(body)).toMatchObject({
      ok: true,
      deliveryId: "1234.5678.abcd",
      event: "block_actions",
    });
  });

  it("falls back to the timestamp and a digest of the body, the same for the same request", async () => {
    const challenge =
      '{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}';
    const first = await verdictFor(challenge);
    expect(first).toMatchObject({ ok: true, event: "url_verification" });
    expect(first.ok && first.deliveryId).toMatch(new RegExp(`^slack:${NOW}:[0-9a-f]{32}$`));
    expect(await verdictFor(challenge)).toEqual(first);
    const other = await verdictFor(challenge.replace('"t"', '"u"'));
    expect(other.ok && other.deliveryId).not.toBe(first.ok && first.deliveryId);
  });
});
