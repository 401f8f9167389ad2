// `choria-edge hook` builds deliveries that the gateway's own verifier accepts, for every sender.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { curlCommand, demoPush, type SignedDelivery, signDelivery } from "../../../cli/hook-run.ts";
import { verifyWebhook, type WebhookScheme } from "../../../lib/security/webhooks/mod.ts";

const NOW = new Date("2026-11-26T01:00:00Z");
const STANDARD_SECRET = `whsec_${btoa("a standard webhooks secret, 32b")}`;
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

const CASES: { scheme: WebhookScheme; secret: string; body: Uint8Array<ArrayBuffer>; id: string }[] = [
  { scheme: "github", secret: "github secret", body: json({ ref: "refs/heads/main" }), id: "d-1" },
  { scheme: "standard-webhooks", secret: STANDARD_SECRET, body: json({ type: "x.y" }), id: "msg_1" },
  {
    scheme: "slack",
    secret: "slack signing secret",
    body: json({ type: "event_callback", event_id: "Ev01", event: { type: "app_mention" } }),
    id: "Ev01",
  },
  {
    scheme: "stripe",
    secret: "whsec_stripe",
    body: json({ id: "evt_1", type: "payment_intent.succeeded" }),
    id: "evt_1",
  },
];

function verify(scheme: WebhookScheme, secret: string, delivery: SignedDelivery, now = NOW) {
  return verifyWebhook(
    scheme,
    { secrets: [secret] },
    { headers: new Headers(delivery.headers), body: delivery.body },
    { now },
  );
}

describe("signDelivery", () => {
  for (const { scheme, secret, body, id } of CASES) {
    it(`${scheme}: the verifier accepts it, finds its delivery id, and refuses another secret`, async () => {
      const delivery = await signDelivery({
        scheme,
        secret,
        body,
        contentType: "application/json",
        ...(scheme === "github" || scheme === "standard-webhooks" ? { deliveryId: id } : {}),
        now: NOW,
      });
      expect(delivery.body).toEqual(body);
      expect(new Headers(delivery.headers).get("content-type")).toBe("application/json");
      expect(await verify(scheme, secret, delivery)).toMatchObject({ ok: true, scheme, deliveryId: id });
      const other = scheme === "standard-webhooks" ? `whsec_${btoa("another secret")}` : "another";
      expect(await verify(scheme, other, delivery)).toMatchObject({ ok: false, reason: "bad_signature" });
    });
  }

  it("signs with the timestamp it is given, so the receiver's freshness window applies", async () => {
    for (const { scheme, secret, body } of CASES.filter((c) => c.scheme !== "github")) {
      const delivery = await signDelivery({
        scheme,
        secret,
        body,
        contentType: "application/json",
        now: NOW,
      });
      const later = new Date(NOW.getTime() + 301_000);
      expect(await verify(scheme, secret, delivery, later)).toMatchObject({ ok: false, reason: "stale" });
    }
  });

  it("github: names the event, and makes a new delivery id unless given one", async () => {
    const options = {
      scheme: "github" as const,
      secret: "s",
      body: json({}),
      contentType: "application/json",
      now: NOW,
    };
    const ping = await signDelivery({ ...options, event: "ping" });
    expect(await verify("github", "s", ping)).toMatchObject({ ok: true, event: "ping" });
    const [first, second] = [await signDelivery(options), await signDelivery(options)];
    const idOf = (d: SignedDelivery) => new Headers(d.headers).get("x-github-delivery");
    expect(idOf(first)).not.toBe(idOf(second));
    expect(new Headers(first.headers).get("x-github-event")).toBe("push");
  });
});

describe("demoPush", () => {
  it("has the fields a push trigger reads", () => {
    const sha = "a".repeat(40);
    expect(demoPush({ ref: "refs/heads/main", sha, repo: "acme/demo" })).toMatchObject({
      ref: "refs/heads/main",
      after: sha,
      deleted: false,
      repository: { name: "demo", full_name: "acme/demo" },
    });
  });
});

describe("curlCommand", () => {
  const delivery: SignedDelivery = {
    headers: [["X-Test", "it's quoted"]],
    body: json({ text: "it's $HOME; `id`" }),
  };

  it("quotes every word so that a shell passes headers and body through unchanged", () => {
    const command = curlCommand("http://127.0.0.1:1/v1/hooks/x", delivery);
    // `printf '%s\n'` stands in for curl: the shell's words, one per line, after its quoting is undone.
    const words = execFileSync("sh", ["-c", command.replace(/^curl/, "printf '%s\\n'")], {
      encoding: "utf8",
    });
    expect(words.split("\n").slice(0, -1)).toEqual([
      "-sS",
      "http://127.0.0.1:1/v1/hooks/x",
      "-H",
      "X-Test: it's quoted",
      "--data-raw",
      '{"text":"it\'s $HOME; `id`"}',
    ]);
  });

  it("sends a body file by reference, byte for byte", () => {
    expect(curlCommand("http://h/v1/hooks/x", delivery, "dir/it's.json")).toMatch(
      / {2}--data-binary '@dir\/it'\\''s\.json'$/,
    );
  });
});
