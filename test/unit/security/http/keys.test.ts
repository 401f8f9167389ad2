import { describe, expect, it } from "vitest";
import { encodeBase64 } from "../../../../lib/protocol/base64.ts";
import { generateKeyPair } from "../../../../lib/security/http/algorithms.ts";
import {
  authenticate,
  generateHttpKey,
  KeyConfigError,
  KeyRegistry,
  MemoryReplayStore,
  type SigningKey,
} from "../../../../lib/security/http/mod.ts";
import { encodePem } from "../../../../lib/security/pem.ts";
import { ALLOW_DEMO, signedRequest } from "./support.ts";

async function configError(config: unknown): Promise<string[]> {
  try {
    await KeyRegistry.fromConfig(config);
  } catch (err) {
    if (err instanceof KeyConfigError) return err.issues;
    throw err;
  }
  throw new Error("the configuration was accepted");
}

async function accepts(registry: KeyRegistry, key: SigningKey): Promise<boolean> {
  const result = await authenticate(await signedRequest(key), {
    keys: registry,
    replay: new MemoryReplayStore(),
  });
  return result.ok;
}

describe("KeyRegistry public keys", () => {
  for (const scheme of ["ed25519", "ecdsa-p256-sha256"] as const) {
    it(`imports a ${scheme} public key as base64 raw, SPKI PEM or JWK`, async () => {
      const pair = await generateKeyPair(scheme);
      const raw = encodeBase64(new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey)));
      const spki = encodePem(
        "PUBLIC KEY",
        new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey)),
      );
      const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
      const signing: SigningKey = { id: "k", scheme, privateKey: pair.privateKey };
      for (const publicKey of [raw, spki, jwk]) {
        const registry = await KeyRegistry.fromConfig({
          keys: [{ id: "k", caller: "c", scheme, publicKey, policy: ALLOW_DEMO }],
        });
        expect(await accepts(registry, signing)).toBe(true);
      }
    });
  }

  it("refuses a JWK that holds the private key, and keys of the wrong type", async () => {
    const generated = await generateHttpKey({ id: "k", caller: "c", scheme: "ed25519" });
    const issues = await configError({
      keys: [
        { id: "k", caller: "c", scheme: "ed25519", publicKey: generated.keyFile.privateKey, policy: {} },
      ],
    });
    expect(issues.join()).toMatch(/private key/);
    const ecdsa = await generateHttpKey({ id: "e", caller: "c", scheme: "ecdsa-p256-sha256" });
    expect((await configError({ keys: [{ ...ecdsa.config, scheme: "ed25519" }] })).join()).toMatch(
      /keys\.0\.publicKey: not a ed25519 public key/,
    );
    expect((await configError({ keys: [{ ...ecdsa.config, publicKey: "%%%" }] })).join()).toMatch(
      /publicKey/,
    );
  });
});

describe("KeyRegistry secrets", () => {
  it("wants hmac keys of at least 32 bytes and bearer tokens of at least 32 characters", async () => {
    const shortHmac = {
      id: "h",
      caller: "c",
      scheme: "hmac-sha256",
      secret: encodeBase64(new Uint8Array(31)),
      policy: {},
    };
    expect((await configError({ keys: [shortHmac] })).join()).toMatch(/at least 32 bytes/);
    const notBase64 = { ...shortHmac, secret: "not base64!" };
    expect((await configError({ keys: [notBase64] })).join()).toMatch(/base64/);
    const shortToken = { id: "b", caller: "c", scheme: "bearer", secret: "x".repeat(31), policy: {} };
    expect((await configError({ keys: [shortToken] })).join()).toMatch(/at least 32 characters/);
  });

  it("refuses two bearer keys with one token, without printing the token", async () => {
    const token = "t".repeat(40);
    const issues = await configError({
      keys: [
        { id: "b1", caller: "c", scheme: "bearer", secret: token, policy: {} },
        { id: "b2", caller: "c", scheme: "bearer", secret: token, policy: {} },
      ],
    });
    expect(issues.join()).toMatch(/same token as key b1/);
    expect(issues.join()).not.toContain(token);
  });

  it("never puts a secret into an error message", async () => {
    const secret = encodeBase64(crypto.getRandomValues(new Uint8Array(8)));
    const err = await KeyRegistry.fromConfig({
      keys: [{ id: "h", caller: "c", scheme: "hmac-sha256", secret, policy: {}, extra: 1 }],
    }).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(KeyConfigError);
    expect((err as Error).message).not.toContain(secret);
  });
});

describe("KeyRegistry configuration", () => {
  it("derives the caller id from the key id, or takes the configured one", async () => {
    const a = await generateHttpKey({ id: "ci-bot-2025", caller: "ci-bot", scheme: "ed25519" });
    const b = await generateHttpKey({ id: "stripe", caller: "billing", scheme: "ed25519" });
    const registry = await KeyRegistry.fromConfig({
      keys: [a.config, { ...b.config, callerId: "sp=billing.example" }],
    });
    expect(registry.get("ci-bot-2025")?.callerId).toBe("choria=ci-bot-2025.mcollective");
    expect(registry.get("stripe")?.callerId).toBe("sp=billing.example");
    expect(registry.get("nope")).toBeUndefined();
    expect(registry.size).toBe(2);
  });

  it("refuses a key id whose derived certname would look privileged, unless callerId is set", async () => {
    const key = await generateHttpKey({ id: "ops.privileged", caller: "ops", scheme: "ed25519" });
    expect((await configError({ keys: [key.config] })).join()).toMatch(/privileged.*set callerId/);
    const registry = await KeyRegistry.fromConfig({
      keys: [{ ...key.config, callerId: "choria=ops.mcollective" }],
    });
    expect(registry.get("ops.privileged")?.callerId).toBe("choria=ops.mcollective");
  });

  it("names every bad field", async () => {
    const ed = await generateHttpKey({ id: "k", caller: "c", scheme: "ed25519" });
    const cases: [unknown, RegExp][] = [
      [{}, /keys/],
      [{ keys: [{ ...ed.config, id: "has space" }] }, /keys\.0\.id/],
      [{ keys: [ed.config, ed.config] }, /keys\.1\.id: key id k is used twice/],
      [{ keys: [{ ...ed.config, scheme: "rsa" }] }, /keys\.0\.scheme/],
      [
        { keys: [{ ...ed.config, publicKey: undefined }] },
        /keys\.0\.publicKey: ed25519 keys need a publicKey/,
      ],
      [{ keys: [{ ...ed.config, secret: "x".repeat(40) }] }, /keys\.0\.secret: ed25519 keys take no secret/],
      [
        { keys: [{ id: "b", caller: "c", scheme: "bearer", policy: {} }] },
        /keys\.0\.secret: bearer keys need/,
      ],
      [{ keys: [{ ...ed.config, notBefore: "yesterday" }] }, /keys\.0\.notBefore/],
      [
        { keys: [{ ...ed.config, notBefore: "2025-01-02T00:00:00Z", notAfter: "2025-01-01T00:00:00Z" }] },
        /notAfter must be after notBefore/,
      ],
      [{ keys: [{ ...ed.config, callerId: "no-type" }] }, /keys\.0\.callerId/],
      [{ keys: [{ ...ed.config, policy: { actions: ["echo"] } }] }, /keys\.0\.policy\.actions\.0/],
      [{ keys: [{ ...ed.config, policy: undefined }] }, /keys\.0\.policy/],
    ];
    for (const [config, pattern] of cases) expect((await configError(config)).join("\n")).toMatch(pattern);
  });

  it("lists bearer keys for the one scheme where the request names no key", async () => {
    const bearer = await generateHttpKey({ id: "b", caller: "c", scheme: "bearer" });
    const ed = await generateHttpKey({ id: "e", caller: "c", scheme: "ed25519" });
    const registry = await KeyRegistry.fromConfig({ keys: [bearer.config, ed.config] });
    expect(registry.bearerKeys().map((k) => k.id)).toEqual(["b"]);
  });
});
