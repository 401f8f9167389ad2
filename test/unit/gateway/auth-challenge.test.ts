import { describe, expect, it } from "vitest";
import { authChallenge } from "../../../lib/gateway/auth.ts";
import { generateHttpKey, KeyRegistry, type Policy } from "../../../lib/security/http/mod.ts";

const policy: Policy = { clusters: ["C1"], collectives: ["*"], agents: ["*"], actions: ["*#*"] };

async function registry(schemes: ("ed25519" | "ecdsa-p256-sha256" | "hmac-sha256" | "bearer")[]) {
  const keys = await Promise.all(
    schemes.map((scheme, n) => generateHttpKey({ id: `k${n}`, caller: "ops", scheme, policy })),
  );
  return KeyRegistry.fromConfig({ keys: keys.map((key) => key.config) });
}

describe("WWW-Authenticate of a 401", () => {
  it("names the signature algorithms of the keys, in one Signature challenge, and Bearer for tokens", async () => {
    expect(authChallenge(await registry(["hmac-sha256", "ecdsa-p256-sha256", "hmac-sha256"]))).toBe(
      'Signature realm="choria-edge", algs="ecdsa-p256-sha256 hmac-sha256"',
    );
    expect(authChallenge(await registry(["bearer"]))).toBe('Bearer realm="choria-edge"');
    expect(authChallenge(await registry([]))).toBe(
      'Signature realm="choria-edge", algs="ed25519 ecdsa-p256-sha256 hmac-sha256", Bearer realm="choria-edge"',
    );
  });
});
