import { describe, expect, it } from "vitest";
import {
  authenticate,
  generateHttpKey,
  KeyRegistry,
  signHttpRequest,
  signingKeyFromText,
} from "../../../../lib/security/http/mod.ts";
import { encodePem } from "../../../../lib/security/pem.ts";
import { ALLOW_DEMO, deps, GATEWAY_URL, signedRequest } from "./support.ts";

describe("signHttpRequest", () => {
  it("adds Content-Digest, Signature-Input and Signature, covering content-type when it is set", async () => {
    const { keyFile } = await generateHttpKey({ id: "k1", caller: "c", scheme: "ed25519" });
    const headers = await signHttpRequest({
      method: "POST",
      url: GATEWAY_URL,
      headers: { "content-type": "application/json", accept: "application/x-ndjson" },
      body: "{}",
      key: { id: "k1", scheme: "ed25519", privateKey: keyFile.privateKey! },
      created: 1700000000,
      nonce: "abc",
      expires: 1700000060,
    });
    expect(headers.get("accept")).toBe("application/x-ndjson");
    expect(headers.get("content-digest")).toBe("sha-256=:RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=:");
    expect(headers.get("signature-input")).toBe(
      'sig1=("@method" "@target-uri" "content-digest" "content-type");created=1700000000;expires=1700000060;nonce="abc";keyid="k1";alg="ed25519"',
    );
    expect(headers.get("signature")).toMatch(/^sig1=:[A-Za-z0-9+/]{86}==:$/);
  });

  it("makes a fresh random nonce for each request by default", async () => {
    const { keyFile } = await generateHttpKey({ id: "h", caller: "c", scheme: "hmac-sha256" });
    const sign = () =>
      signHttpRequest({
        method: "GET",
        url: GATEWAY_URL,
        key: { id: "h", scheme: "hmac-sha256", secret: keyFile.secret! },
      });
    const nonces = await Promise.all([sign(), sign()]).then((all) =>
      all.map((h) => /nonce="([^"]+)"/.exec(h.get("signature-input")!)?.[1]),
    );
    expect(nonces[0]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(nonces[0]).not.toBe(nonces[1]);
  });

  it("refuses to sign a component it cannot compute", async () => {
    const { keyFile } = await generateHttpKey({ id: "h", caller: "c", scheme: "hmac-sha256" });
    await expect(
      signHttpRequest({
        method: "GET",
        url: GATEWAY_URL,
        key: { id: "h", scheme: "hmac-sha256", secret: keyFile.secret! },
        components: ["@method", "x-missing"],
      }),
    ).rejects.toThrow(/x-missing is missing/);
  });
});

describe("key files", () => {
  for (const scheme of ["ed25519", "ecdsa-p256-sha256", "hmac-sha256", "bearer"] as const) {
    it(`a generated ${scheme} key file signs requests its config entry accepts`, async () => {
      const generated = await generateHttpKey({
        id: `${scheme}-key`,
        caller: "ci",
        scheme,
        policy: ALLOW_DEMO,
      });
      const registry = await KeyRegistry.fromConfig({ keys: [generated.config] });
      const key = await signingKeyFromText(JSON.stringify(generated.keyFile));
      if (!key.ok) throw new Error(key.error);
      const result = await authenticate(await signedRequest(key.key), deps(registry));
      expect(result).toMatchObject({ ok: true, key: { id: `${scheme}-key`, caller: "ci" } });
    });
  }

  it("keeps only public material in the config entry of an asymmetric key, and only a hash of a token", async () => {
    const ed = await generateHttpKey({ id: "e", caller: "c", scheme: "ed25519" });
    expect(JSON.stringify(ed.config)).not.toContain(ed.keyFile.privateKey!.d!);
    const bearer = await generateHttpKey({ id: "b", caller: "c", scheme: "bearer" });
    expect(JSON.stringify(bearer.config)).not.toContain(bearer.keyFile.secret!);
    expect(bearer.config.policy).toEqual({ clusters: [], collectives: [], agents: [], actions: [] });
  });

  it("reads a bare private JWK and a PKCS#8 PEM, given the key id", async () => {
    for (const scheme of ["ed25519", "ecdsa-p256-sha256"] as const) {
      const generated = await generateHttpKey({ id: "k", caller: "c", scheme, policy: ALLOW_DEMO });
      const registry = await KeyRegistry.fromConfig({ keys: [generated.config] });
      const jwk = await signingKeyFromText(JSON.stringify(generated.keyFile.privateKey), "k");
      const params = scheme === "ed25519" ? { name: "Ed25519" } : { name: "ECDSA", namedCurve: "P-256" };
      const imported = await crypto.subtle.importKey("jwk", generated.keyFile.privateKey!, params, true, [
        "sign",
      ]);
      const pem = encodePem("PRIVATE KEY", new Uint8Array(await crypto.subtle.exportKey("pkcs8", imported)));
      const fromPem = await signingKeyFromText(pem, "k");
      for (const key of [jwk, fromPem]) {
        if (!key.ok) throw new Error(key.error);
        expect(key.key.scheme).toBe(scheme);
        expect((await authenticate(await signedRequest(key.key), deps(registry))).ok).toBe(true);
      }
    }
  });

  it("says what is wrong with an unusable key file", async () => {
    const ed = await generateHttpKey({ id: "k", caller: "c", scheme: "ed25519" });
    const cases: [string, string | undefined, RegExp][] = [
      ["not json", undefined, /neither JSON nor PEM/],
      ["[1]", undefined, /no key id/],
      ['"text"', undefined, /not a JSON object/],
      [JSON.stringify({ ...ed.keyFile, scheme: "rsa" }), undefined, /scheme must be one of/],
      [JSON.stringify({ id: "b", scheme: "bearer" }), undefined, /needs a secret/],
      [JSON.stringify({ id: "e", scheme: "ed25519" }), undefined, /needs a privateKey/],
      [JSON.stringify(ed.keyFile.privateKey), undefined, /no key id/],
      [JSON.stringify({ kty: "OKP", crv: "X25519", d: "x" }), "k", /neither an Ed25519 nor a P-256/],
      [encodePem("PRIVATE KEY", new Uint8Array([48, 3, 2, 1, 0])), "k", /neither Ed25519 nor ECDSA P-256/],
      [encodePem("PRIVATE KEY", new Uint8Array([48, 3, 2, 1, 0])), undefined, /pass --key-id/],
    ];
    for (const [text, id, pattern] of cases) {
      const result = await signingKeyFromText(text, id);
      expect(result.ok ? "accepted" : result.error).toMatch(pattern);
    }
  });
});
