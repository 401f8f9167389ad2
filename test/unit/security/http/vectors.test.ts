// RFC 9421 Appendix B and RFC 9530 published vectors: the signature bases this code builds are the RFC's,
// byte for byte, and the published signatures verify with the published keys.
import { describe, expect, it } from "vitest";
import { verifySync } from "../../../../functions/node-crypto.ts";
import { encodeBase64 } from "../../../../lib/protocol/base64.ts";
import { base64Bytes } from "../../../../lib/security/bytes.ts";
import {
  importHmacKey,
  importPublicKey,
  signBase,
  verifyBase,
} from "../../../../lib/security/http/algorithms.ts";
import {
  authenticate,
  checkContentDigest,
  contentDigest,
  type HttpRequestParts,
  KeyRegistry,
  MemoryReplayStore,
  parseDictionary,
  signatureBase,
} from "../../../../lib/security/http/mod.ts";
import { parsePem, pkcs8FromPem } from "../../../../lib/security/pem.ts";
import { appendixB } from "./support.ts";

const utf8 = (text: string) => new TextEncoder().encode(text);

function requestOf(name: string, extra: Record<string, string> = {}): HttpRequestParts {
  const request = appendixB.requests[name]!;
  return {
    method: request.method,
    url: request.url,
    headers: new Headers({ ...request.headers, ...extra }),
    body: utf8(request.body),
  };
}

function labelled(field: string) {
  const parsed = parseDictionary(field);
  if (!parsed.ok) throw new Error(parsed.error);
  const [label, member] = [...parsed.value][0]!;
  return { label, member };
}

async function verificationKey(name: string): Promise<CryptoKey> {
  const key = appendixB.keys[name]!;
  if (key.scheme === "hmac-sha256") return importHmacKey(base64Bytes(key.secret!)!);
  const pem = parsePem(key.publicKey!);
  if (!pem.ok) throw new Error(pem.error);
  return importPublicKey(key.scheme as "ed25519" | "ecdsa-p256-sha256", {
    format: "spki",
    bytes: pem.value[0]!.der,
  });
}

describe("RFC 9530 Content-Digest", () => {
  it("computes the published sha-256 and sha-512 digests of the example body", async () => {
    const body = utf8(appendixB.rfc9530.body);
    expect(await contentDigest(body)).toBe(appendixB.rfc9530["sha-256"]);
    expect(await contentDigest(body, "sha-512")).toBe(appendixB.rfc9530["sha-512"]);
  });

  it("accepts the published digests, alone or together, and the B.2.4 response digest", async () => {
    const body = utf8(appendixB.rfc9530.body);
    expect(await checkContentDigest(appendixB.rfc9530["sha-256"], body)).toEqual({ ok: true });
    expect(await checkContentDigest(appendixB.rfc9530["sha-512"], body)).toEqual({ ok: true });
    const both = `${appendixB.rfc9530["sha-512"]}, ${appendixB.rfc9530["sha-256"]}`;
    expect(await checkContentDigest(both, body)).toEqual({ ok: true });
    const response = appendixB.responseVectors[0]!;
    expect(await checkContentDigest(response.contentDigest, utf8(response.body))).toEqual({ ok: true });
  });
});

describe("RFC 9421 Appendix B request vectors", () => {
  for (const vector of appendixB.requestVectors) {
    it(`${vector.section}: builds the published signature base`, () => {
      const { member } = labelled(vector.signatureInput);
      const base = signatureBase(requestOf(vector.request), member as never);
      expect(base).toEqual({ ok: true, value: vector.signatureBase });
    });
    if (vector.key === null || vector.signature === undefined) continue;
    const keyName = vector.key;
    const signatureField = vector.signature;
    const scheme = appendixB.keys[keyName]!.scheme as "ed25519" | "ecdsa-p256-sha256" | "hmac-sha256";

    it(`${vector.section}: the published ${scheme} signature verifies, and not over a changed base`, async () => {
      const { member } = labelled(signatureField);
      const signature = (member as { value: Uint8Array }).value;
      const key = await verificationKey(keyName);
      const changed = `${vector.signatureBase.slice(0, -2)}x"`;
      for (const sync of [undefined, verifySync]) {
        expect(await verifyBase(scheme, key, vector.signatureBase, signature, sync)).toBe(true);
        expect(await verifyBase(scheme, key, changed, signature, sync)).toBe(false);
        expect(await verifyBase(scheme, key, `${vector.signatureBase} `, signature, sync)).toBe(false);
      }
    });

    if (vector.deterministic) {
      it(`${vector.section}: signing the base reproduces the published signature`, async () => {
        const secret = appendixB.keys[keyName]!;
        const signingKey =
          scheme === "hmac-sha256"
            ? await importHmacKey(base64Bytes(secret.secret!)!)
            : await crypto.subtle.importKey(
                "pkcs8",
                pkcs8Der(secret.privateKey!),
                { name: "Ed25519" },
                false,
                ["sign"],
              );
        const signature = await signBase(scheme, signingKey, vector.signatureBase);
        expect(`${labelled(signatureField).label}=:${encodeBase64(signature)}:`).toBe(signatureField);
      });
    }

    it(`${vector.section}: authenticate verifies the signature but wants the target and a digest covered, and names only what is missing`, async () => {
      const secret = appendixB.keys[keyName]!;
      const registry = await KeyRegistry.fromConfig({
        keys: [
          {
            id: keyName,
            caller: "rfc",
            scheme,
            ...(secret.publicKey ? { publicKey: secret.publicKey } : { secret: secret.secret }),
            policy: {},
          },
        ],
      });
      const request = requestOf(vector.request, {
        "signature-input": vector.signatureInput,
        signature: signatureField,
        // B.3 has no Content-Digest; give it one so that the coverage rule is what decides.
        "content-digest": appendixB.rfc9530["sha-256"],
      });
      const result = await authenticate(request, {
        keys: registry,
        replay: new MemoryReplayStore(),
        now: new Date(appendixB.created * 1000),
      });
      expect(result).toMatchObject({ ok: false, problem: "insufficient_coverage", status: 400 });
      const detail = result.ok ? "" : result.detail;
      expect(detail).toMatch(/must cover .*content-digest/);
      const named = (detail.split("must cover ")[1] ?? "").split(" (or")[0]!.split(", ");
      const covered = [...vector.signatureInput.matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
      for (const component of covered) expect(named).not.toContain(component);
    });
  }
});

describe("RFC 9421 Appendix B.2.4 response vector", () => {
  it("the published ecdsa-p256-sha256 signature verifies over the published base", async () => {
    const vector = appendixB.responseVectors[0]!;
    const key = await verificationKey(vector.key);
    const signature = base64Bytes(vector.signature)!;
    expect(signature.length).toBe(64);
    const changed = vector.signatureBase.replace("200", "201");
    for (const sync of [undefined, verifySync]) {
      expect(await verifyBase("ecdsa-p256-sha256", key, vector.signatureBase, signature, sync)).toBe(true);
      expect(await verifyBase("ecdsa-p256-sha256", key, changed, signature, sync)).toBe(false);
    }
  });
});

function pkcs8Der(pem: string) {
  const der = pkcs8FromPem(pem);
  if (!der.ok) throw new Error(der.error);
  return der.value;
}
