import { describe, expect, it } from "vitest";
import { webhookSecretsProblems } from "../../../../lib/security/webhooks/mod.ts";

const WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WHPK = `whpk_${btoa(String.fromCharCode(...new Uint8Array(32).fill(9)))}`;

describe("webhookSecretsProblems", () => {
  it("accepts usable material for each sender", () => {
    expect(webhookSecretsProblems("github", { secrets: ["s1", "s2"] })).toEqual([]);
    expect(webhookSecretsProblems("slack", { secrets: ["8f742231b10e8888abcd99yyyzzz85a5"] })).toEqual([]);
    expect(webhookSecretsProblems("stripe", { secrets: ["whsec_abc"] })).toEqual([]);
    expect(webhookSecretsProblems("standard-webhooks", { secrets: [WHSEC] })).toEqual([]);
    expect(webhookSecretsProblems("standard-webhooks", { publicKeys: [WHPK] })).toEqual([]);
    expect(
      webhookSecretsProblems("standard-webhooks", { secrets: [WHSEC.slice(6)], publicKeys: [WHPK] }),
    ).toEqual([]);
  });

  it("names missing, empty and misplaced material by position", () => {
    expect(webhookSecretsProblems("github", {})).toEqual(["a github sender needs at least one secret"]);
    expect(webhookSecretsProblems("slack", { secrets: ["ok", ""] })).toEqual(["secrets[1] is empty"]);
    expect(webhookSecretsProblems("github", { secrets: ["s"], publicKeys: [WHPK] })).toEqual([
      "a github sender signs with shared secrets only: publicKeys are not used",
    ]);
    expect(webhookSecretsProblems("stripe", { secrets: ["sk_live_wrong_kind"] })).toEqual([
      "secrets[0] is not a Stripe endpoint secret (those start with whsec_)",
    ]);
    expect(webhookSecretsProblems("standard-webhooks", {})).toEqual([
      "a Standard Webhooks sender needs secrets or publicKeys",
    ]);
  });

  it("refuses Standard Webhooks material that is not whsec_/whpk_ base64, without echoing it", () => {
    const problems = webhookSecretsProblems("standard-webhooks", {
      secrets: [WHSEC, "whsec_not base64!"],
      publicKeys: ["whpk_AAAA", WHPK],
    });
    expect(problems).toEqual([
      "secrets[1] is not whsec_<base64>",
      "publicKeys[0] is not whpk_<base64 of 32 bytes>",
    ]);
    expect(problems.join(" ")).not.toContain("not base64!");
  });
});
