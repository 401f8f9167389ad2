import { describe, expect, it } from "vitest";
import {
  importSealKey,
  newSealKey,
  openSecret,
  sealSecret,
} from "../../../../lib/results/jobs/sealed-secret.ts";
import { newWebhookSecret } from "../../../../lib/results/jobs/webhook.ts";

describe("sealed callback secrets", () => {
  const url = "https://hooks.example.com/ci/done";

  it("seal to text that does not hold the secret, and open only with the same key for the same URL", async () => {
    const key = await importSealKey(newSealKey());
    const secret = newWebhookSecret();
    const sealed = await sealSecret(key, secret, url);
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9+/]+=*\.[A-Za-z0-9+/]+=*$/);
    expect(sealed).not.toContain(secret.slice("whsec_".length, 20));
    expect(await sealSecret(key, secret, url)).not.toBe(sealed);
    expect(await openSecret(key, sealed, url)).toBe(secret);
    expect(await openSecret(key, sealed, "https://elsewhere.example.com/ci/done")).toBeUndefined();
    expect(await openSecret(await importSealKey(newSealKey()), sealed, url)).toBeUndefined();
    expect(await openSecret(key, `${sealed.slice(0, -4)}AAA=`, url)).toBeUndefined();
    expect(await openSecret(key, "v1.nonsense", url)).toBeUndefined();
  });

  it("keys are base64 of 32 bytes", async () => {
    await expect(importSealKey(btoa("too short"))).rejects.toThrow(/32 bytes/);
    await expect(importSealKey("not base64!")).rejects.toThrow(/32 bytes/);
  });
});
