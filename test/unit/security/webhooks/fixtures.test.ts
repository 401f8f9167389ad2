import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import {
  buildFixtures,
  FIXTURE_FILES,
  fixtureText,
  type WebhookFixture,
} from "../../../fixtures/webhooks/generate.ts";
import { check, outcome } from "./support.ts";

const fixtureUrl = (name: string) => new URL(`../../../fixtures/webhooks/${name}`, import.meta.url);

async function load(name: string): Promise<WebhookFixture> {
  return JSON.parse(await readFile(fixtureUrl(name), "utf8")) as WebhookFixture;
}

function secretsOf(fixture: WebhookFixture) {
  return { secrets: [fixture.secret], ...(fixture.publicKey ? { publicKeys: [fixture.publicKey] } : {}) };
}

function nowOf(fixture: WebhookFixture): number {
  return Math.floor(Date.parse(fixture.now) / 1000);
}

describe("signed webhook fixtures", () => {
  it("are exactly what the generator builds, so they can be regenerated and reviewed", async () => {
    const built = await buildFixtures();
    for (const name of FIXTURE_FILES) {
      expect(await readFile(fixtureUrl(name), "utf8"), name).toBe(fixtureText(built[name]));
    }
  });

  it.each(FIXTURE_FILES)("%s verifies at its own clock with the expected delivery", async (name) => {
    const fixture = await load(name);
    const verdict = await check(
      fixture.scheme,
      secretsOf(fixture),
      fixture.headers,
      fixture.body,
      nowOf(fixture),
    );
    expect(verdict).toEqual({ ok: true, scheme: fixture.scheme, ...fixture.expect });
  });

  it.each(FIXTURE_FILES)("%s is refused with one byte of its body changed", async (name) => {
    const fixture = await load(name);
    const tampered = fixture.body.replace(/\d/, (digit) => String((Number(digit) + 1) % 10));
    expect(tampered).not.toBe(fixture.body);
    const verdict = await check(
      fixture.scheme,
      secretsOf(fixture),
      fixture.headers,
      tampered,
      nowOf(fixture),
    );
    expect(outcome(verdict)).toBe("bad_signature");
  });

  it.each(FIXTURE_FILES)("%s is refused under another secret", async (name) => {
    const fixture = await load(name);
    // A middle character: a base64 secret's last one can change only the padding bits, and a trailing zero
    // byte leaves an HMAC key as it was.
    const middle = Math.floor(fixture.secret.length / 2);
    const changed = fixture.secret[middle] === "A" ? "B" : "A";
    const secrets = {
      secrets: [fixture.secret.slice(0, middle) + changed + fixture.secret.slice(middle + 1)],
    };
    const verdict = await check(fixture.scheme, secrets, fixture.headers, fixture.body, nowOf(fixture));
    expect(outcome(verdict)).toBe("bad_signature");
  });

  it.each(FIXTURE_FILES.filter((name) => !name.startsWith("github")))(
    "%s is refused as stale ten minutes later",
    async (name) => {
      const fixture = await load(name);
      const verdict = await check(
        fixture.scheme,
        secretsOf(fixture),
        fixture.headers,
        fixture.body,
        nowOf(fixture) + 600,
      );
      expect(outcome(verdict)).toBe("stale");
    },
  );

  it("the Standard Webhooks fixture verifies by its v1a entry alone with only the public key", async () => {
    const fixture = await load("standard-webhooks-invoice-paid.json");
    const verdict = await check(
      fixture.scheme,
      { publicKeys: [fixture.publicKey!] },
      fixture.headers,
      fixture.body,
      nowOf(fixture),
    );
    expect(outcome(verdict)).toBe("ok");
  });
});
