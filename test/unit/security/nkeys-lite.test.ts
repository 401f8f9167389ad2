import * as nkeys from "@nats-io/nkeys";
import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encode, fromSeed } from "../../../lib/security/nkeys-lite.ts";

// The Worker's stand-in for @nats-io/nkeys must give the server exactly what the real one gives: the same
// public key and, Ed25519 being deterministic, the same signature bytes for the same nonce.
describe("nkeys-lite, against @nats-io/nkeys", () => {
  const seeds = [nkeys.createUser, nkeys.createAccount, nkeys.createServer, nkeys.createOperator].map(
    (create) => create().getSeed(),
  );

  it("derives the same public key and signs nonces to the same bytes", () => {
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.uint8Array({ maxLength: 300 }), (seed, nonce) => {
        const real = nkeys.fromSeed(seed);
        const lite = fromSeed(seed);
        expect(lite.getPublicKey()).toBe(real.getPublicKey());
        const signature = lite.sign(nonce);
        expect(encode(signature)).toBe(nkeys.encode(real.sign(nonce)));
      }),
      { numRuns: 40 },
    );
  });

  it("refuses what is not a signing seed: a public key, a curve seed, a broken checksum", () => {
    const user = nkeys.createUser();
    const seed = new TextDecoder().decode(user.getSeed());
    const broken = `${seed.slice(0, 10)}${seed[10] === "A" ? "B" : "A"}${seed.slice(11)}`;
    for (const text of [user.getPublicKey(), new TextDecoder().decode(nkeys.createCurve().getSeed()), broken])
      expect(() => fromSeed(new TextEncoder().encode(text))).toThrow(/nkey/);
  });
});
