import { describe, expect, it } from "vitest";
import { verifySync } from "../../../../functions/node-crypto.ts";
import { encodeBase64 } from "../../../../lib/protocol/base64.ts";
import {
  type AuthResult,
  authenticate,
  generateHttpKey,
  type HttpRequestParts,
  KeyRegistry,
  type ReplayStore,
  replayWindowSeconds,
  type SigningKey,
  signHttpRequest,
} from "../../../../lib/security/http/mod.ts";
import { ALLOW_DEMO, BODY, deps, GATEWAY_URL, keyring, signedRequest, signingKeyOf } from "./support.ts";

const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const now = NOW.getTime() / 1000;
const { registry, signing } = await keyring();

function withHeaders(request: HttpRequestParts, change: (headers: Headers) => void): HttpRequestParts {
  const headers = new Headers(request.headers);
  change(headers);
  return { ...request, headers };
}

function refused(result: AuthResult, problem: string, status?: number) {
  expect(result).toMatchObject({ ok: false, problem, ...(status === undefined ? {} : { status }) });
}

const at = (extra: Partial<Parameters<typeof deps>[1]> = {}) => deps(registry, { now: NOW, ...extra });

describe.each(["ed25519", "ecdsa-p256-sha256", "hmac-sha256"] as const)("RFC 9421 with %s", (scheme) => {
  const key = signing[scheme];
  const sign = (overrides: Parameters<typeof signedRequest>[1] = {}) =>
    signedRequest(key, { created: now, ...overrides });

  it("accepts a freshly signed request and names the key, caller and caller id", async () => {
    const result = await authenticate(await sign({ nonce: "n-1" }), at());
    expect(result).toEqual({
      ok: true,
      key: expect.objectContaining({
        id: `${scheme}-1`,
        caller: `${scheme}-caller`,
        scheme,
        callerId: `choria=${scheme}-1.mcollective`,
        policy: ALLOW_DEMO,
      }),
      created: now,
      nonce: "n-1",
    });
  });

  it("refuses a changed body: the digest no longer matches", async () => {
    const request = await sign();
    refused(
      await authenticate({ ...request, body: new TextEncoder().encode(`${BODY} `) }, at()),
      "digest_mismatch",
      401,
    );
  });

  it("refuses a changed body with a recomputed digest: the signature covers the digest", async () => {
    const request = await sign();
    const body = new TextEncoder().encode(BODY.replace("ping", "pong"));
    const digest = `sha-256=:${encodeBase64(new Uint8Array(await crypto.subtle.digest("SHA-256", body)))}:`;
    const tampered = withHeaders({ ...request, body }, (h) => h.set("content-digest", digest));
    refused(await authenticate(tampered, at()), "bad_signature", 401);
  });

  it("refuses a changed covered header, URL or method", async () => {
    const request = await sign();
    refused(
      await authenticate(
        withHeaders(request, (h) => h.set("content-type", "text/plain")),
        at(),
      ),
      "bad_signature",
    );
    refused(await authenticate({ ...request, url: `${GATEWAY_URL}?x=1` }, at()), "bad_signature");
    refused(await authenticate({ ...request, url: "https://other.example/v1/rpc" }, at()), "bad_signature");
    refused(await authenticate({ ...request, method: "PUT" }, at()), "bad_signature");
  });

  it("refuses a signature made with another key under this key's id", async () => {
    const other = signingKeyOf((await generateHttpKey({ id: key.id, caller: "x", scheme })).keyFile);
    refused(await authenticate(await signedRequest(other, { created: now }), at()), "bad_signature", 401);
  });

  it("checks the signature with the sync verifier when given one (Node), to the same verdicts", async () => {
    const other = signingKeyOf((await generateHttpKey({ id: key.id, caller: "x", scheme })).keyFile);
    expect((await authenticate(await sign(), at({ verify: verifySync }))).ok).toBe(true);
    refused(
      await authenticate(await signedRequest(other, { created: now }), at({ verify: verifySync })),
      "bad_signature",
    );
    // Its verdict is the one that counts for signatures (an HMAC is recomputed either way).
    const result = await authenticate(await sign(), at({ verify: () => false }));
    if (scheme === "hmac-sha256") expect(result.ok).toBe(true);
    else refused(result, "bad_signature");
  });

  it("honours created within the skew and refuses it outside the age and skew", async () => {
    expect((await authenticate(await sign({ created: now + 25 }), at())).ok).toBe(true);
    expect((await authenticate(await sign({ created: now - 320 }), at())).ok).toBe(true);
    refused(await authenticate(await sign({ created: now + 31 }), at()), "stale", 401);
    refused(await authenticate(await sign({ created: now - 331 }), at()), "stale", 401);
    refused(
      await authenticate(await sign({ created: now - 60 }), at({ maxAgeSeconds: 20, maxSkewSeconds: 5 })),
      "stale",
    );
    expect((await authenticate(await sign({ created: now - 60 }), at({ maxAgeSeconds: 120 }))).ok).toBe(true);
  });

  it("names the key of a stale signature, once the signature has verified", async () => {
    const old = await authenticate(await sign({ created: now - 3600 }), at());
    expect(old).toMatchObject({
      ok: false,
      problem: "stale",
      key: { id: key.id, caller: `${scheme}-caller` },
    });
    // Stale and not signed by the key: nothing says who it was, so nothing names a key.
    const forged = withHeaders(await sign({ created: now - 3600 }), (h) =>
      h.set(
        "signature",
        h.get("signature")!.replace(/:(.)/, (_, c) => `:${c === "A" ? "B" : "A"}`),
      ),
    );
    const result = await authenticate(forged, at());
    expect(result).toMatchObject({ ok: false, problem: "bad_signature" });
    expect(result.ok || result.key).toBeUndefined();
  });

  it("honours expires", async () => {
    const result = await authenticate(await sign({ created: now - 100, expires: now - 40 }), at());
    refused(result, "stale");
    expect(!result.ok && result.detail).toMatch(/expired/);
    expect((await authenticate(await sign({ created: now - 100, expires: now + 10 }), at())).ok).toBe(true);
    refused(await authenticate(await sign({ created: now, expires: now }), at()), "malformed_signature");
  });

  it("refuses a replayed request, keyed on the nonce", async () => {
    const shared = at();
    const request = await sign({ nonce: "once" });
    expect((await authenticate(request, shared)).ok).toBe(true);
    expect(await authenticate(request, shared)).toMatchObject({
      ok: false,
      problem: "replay",
      status: 401,
      key: { id: key.id },
    });
    // The same nonce in a differently signed request is a replay too; a new nonce is not.
    refused(await authenticate(await sign({ nonce: "once", created: now - 1 }), shared), "replay");
    expect((await authenticate(await sign({ nonce: "twice" }), shared)).ok).toBe(true);
  });

  it("refuses a replayed request without a nonce, keyed on what was signed", async () => {
    const shared = at();
    const request = await sign({ nonce: null });
    expect(request.headers.get("signature-input")).not.toMatch(/nonce/);
    const first = await authenticate(request, shared);
    expect(first.ok && first.nonce).toBe(undefined);
    refused(await authenticate(request, shared), "replay");
    expect((await authenticate(await sign({ nonce: null, created: now - 1 }), shared)).ok).toBe(true);
  });

  it("does not claim a nonce for a request that failed verification", async () => {
    const shared = at();
    const good = await sign({ nonce: "claimed-only-once" });
    refused(await authenticate({ ...good, method: "PUT" }, shared), "bad_signature");
    expect((await authenticate(good, shared)).ok).toBe(true);
  });

  it("wants @method, the target, content-digest when there is a body, and created", async () => {
    const noMethod = await sign({ components: ["@target-uri", "content-digest"] });
    refused(await authenticate(noMethod, at()), "insufficient_coverage", 400);
    const noDigest = await sign({ components: ["@method", "@target-uri"] });
    refused(await authenticate(noDigest, at()), "insufficient_coverage");
    const noQuery = await sign({
      url: `${GATEWAY_URL}?dry_run=1`,
      components: ["@method", "@authority", "@path", "content-digest"],
    });
    refused(await authenticate(noQuery, at()), "insufficient_coverage");
    const parts = await sign({ components: ["@method", "@authority", "@path", "@query", "content-digest"] });
    expect((await authenticate(parts, at())).ok).toBe(true);
    const noCreated = withHeaders(await sign(), (h) =>
      h.set("signature-input", h.get("signature-input")!.replace(/;created=\d+/, "")),
    );
    refused(await authenticate(noCreated, at()), "insufficient_coverage");
  });

  it("takes @authority and @path without @query when the URL has no query (a common library's default set)", async () => {
    const components = ["@method", "@authority", "@path", "content-digest", "content-type"];
    expect(await authenticate(await sign({ components }), at())).toMatchObject({ ok: true });
    // A query the signature does not cover could be added or changed on the way: refused, naming only it.
    const withQuery = await sign({ components, url: `${GATEWAY_URL}?dry_run=1` });
    expect(await authenticate(withQuery, at())).toEqual({
      ok: false,
      problem: "insufficient_coverage",
      status: 400,
      detail: "sig1: must cover @query (or @target-uri in place of @query)",
    });
    // Moving a query-less signature onto a URL with a query breaks it the same way.
    const moved = await sign({ components });
    refused(await authenticate({ ...moved, url: `${GATEWAY_URL}?dry_run=1` }, at()), "insufficient_coverage");
  });

  it("names only what is missing", async () => {
    const detailOf = async (components: string[]) => {
      const result = await authenticate(await sign({ components }), at());
      return result.ok ? "accepted" : result.detail;
    };
    expect(await detailOf(["@authority", "@path", "content-digest"])).toBe("sig1: must cover @method");
    expect(await detailOf(["@method", "@path", "content-digest"])).toBe(
      "sig1: must cover @authority (or @target-uri in place of @authority)",
    );
    expect(await detailOf(["@method", "@target-uri"])).toBe("sig1: must cover content-digest");
  });

  it("needs no digest for an empty body", async () => {
    const request = await signedRequest(key, { method: "GET", created: now, body: "" });
    expect(request.headers.has("content-digest")).toBe(false);
    expect((await authenticate(request, at())).ok).toBe(true);
  });

  it("refuses a body whose covered Content-Digest was removed", async () => {
    const request = withHeaders(await sign(), (h) => h.delete("content-digest"));
    refused(await authenticate(request, at()), "missing_digest", 400);
  });

  it("refuses an alg that differs from the key's or that is not supported", async () => {
    const otherAlg = scheme === "ed25519" ? "hmac-sha256" : "ed25519";
    for (const alg of [otherAlg, "rsa-pss-sha512"]) {
      const request = withHeaders(await sign(), (h) =>
        h.set("signature-input", h.get("signature-input")!.replace(`alg="${scheme}"`, `alg="${alg}"`)),
      );
      refused(await authenticate(request, at()), "unsupported_algorithm", 400);
    }
    expect((await authenticate(await sign({ alg: false }), at())).ok).toBe(true);
  });

  it("refuses bodies over the limit before looking at the signature", async () => {
    const request = await sign();
    refused(
      await authenticate(request, at({ maxBodyBytes: request.body.length - 1 })),
      "body_too_large",
      413,
    );
    expect((await authenticate(request, at({ maxBodyBytes: request.body.length }))).ok).toBe(true);
  });
});

describe("RFC 9421 refusals that do not depend on the algorithm", () => {
  const key = signing.ed25519;
  const sign = (overrides: Parameters<typeof signedRequest>[1] = {}) =>
    signedRequest(key, { created: now, ...overrides });

  it("asks for credentials when there are none", async () => {
    const request = withHeaders(await sign(), (h) => {
      h.delete("signature");
      h.delete("signature-input");
    });
    refused(await authenticate(request, at()), "missing_credentials", 401);
  });

  it("refuses half a signature", async () => {
    for (const header of ["signature", "signature-input"]) {
      const request = withHeaders(await sign(), (h) => h.delete(header));
      refused(await authenticate(request, at()), "malformed_signature", 400);
    }
  });

  it("refuses malformed structured fields", async () => {
    const cases: [string, string][] = [
      ["signature-input", 'sig1=("@method" "@target-uri"'],
      ["signature-input", 'sig1=("@method");keyid=ed25519-1'],
      ["signature-input", "sig1=:AAAA:"],
      ["signature-input", 'Sig1=("@method");keyid="ed25519-1"'],
      ["signature-input", 'sig1=("@method");created=1;created=2;keyid="ed25519-1"'],
      ["signature-input", 'sig1=("@method");created="now";keyid="ed25519-1"'],
      ["signature", "sig1=:not base64!:"],
      ["signature", 'sig1="a string"'],
      ["signature", "sig2=:AAAA:"],
      ["signature-input", `sig1=("@method");keyid="${"x".repeat(9000)}"`],
    ];
    for (const [header, value] of cases) {
      const request = withHeaders(await sign(), (h) => h.set(header, value));
      const result = await authenticate(request, at());
      expect({ header, value: value.slice(0, 60), result }).toMatchObject({
        result: { ok: false, problem: "malformed_signature", status: 400 },
      });
    }
  });

  it("refuses a covered header that is missing and unsupported component parameters", async () => {
    const missing = await sign({
      headers: { "content-type": "application/json", "x-extra": "1" },
      components: ["@method", "@target-uri", "content-digest", "x-extra"],
    });
    refused(
      await authenticate(
        withHeaders(missing, (h) => h.delete("x-extra")),
        at(),
      ),
      "malformed_signature",
    );
    const parameterised = withHeaders(await sign(), (h) =>
      h.set("signature-input", h.get("signature-input")!.replace('"content-type"', '"content-type";sf')),
    );
    refused(await authenticate(parameterised, at()), "malformed_signature");
  });

  it("refuses an unknown key naming the field, not repeating the caller's keyid", async () => {
    const stranger = signingKeyOf(
      (await generateHttpKey({ id: "stranger", caller: "x", scheme: "ed25519" })).keyFile,
    );
    const result = await authenticate(await signedRequest(stranger, { created: now }), at());
    refused(result, "unknown_key", 401);
    expect(!result.ok && result.detail).toContain("keyid");
    expect(!result.ok && result.detail).not.toContain("stranger");
    const alg = withHeaders(await sign(), (h) =>
      h.set("signature-input", h.get("signature-input")!.replace(/alg="[^"]*"/, 'alg="rot13-of-doom"')),
    );
    const refusedAlg = await authenticate(alg, at());
    refused(refusedAlg, "unsupported_algorithm", 400);
    expect(!refusedAlg.ok && refusedAlg.detail).not.toContain("rot13");
  });

  it("uses the first signature made with a known key when there are several", async () => {
    const stranger = signingKeyOf(
      (await generateHttpKey({ id: "stranger", caller: "x", scheme: "ed25519" })).keyFile,
    );
    const first = await signedRequest(stranger, { created: now, label: "hop" });
    const second = await signedRequest(key, { created: now, label: "caller" });
    const request = withHeaders(second, (h) => {
      h.set(
        "signature-input",
        `${first.headers.get("signature-input")}, ${second.headers.get("signature-input")}`,
      );
      h.set("signature", `${first.headers.get("signature")}, ${second.headers.get("signature")}`);
    });
    expect(await authenticate(request, at())).toMatchObject({ ok: true, key: { id: key.id } });
  });

  it("refuses keys outside their validity window, and accepts rotated keys of one caller side by side", async () => {
    const old = await generateHttpKey({ id: "ci-2024", caller: "ci", scheme: "ed25519", policy: ALLOW_DEMO });
    const current = await generateHttpKey({
      id: "ci-2025",
      caller: "ci",
      scheme: "ed25519",
      policy: ALLOW_DEMO,
    });
    const next = await generateHttpKey({
      id: "ci-2026",
      caller: "ci",
      scheme: "ed25519",
      policy: ALLOW_DEMO,
    });
    const iso = (offsetSeconds: number) => new Date((now + offsetSeconds) * 1000).toISOString();
    const rotated = await KeyRegistry.fromConfig({
      keys: [
        { ...old.config, notAfter: iso(-1) },
        { ...current.config, notBefore: iso(-3600), notAfter: iso(3600) },
        { ...next.config, notBefore: iso(60) },
      ],
    });
    const check = async (file: typeof old) =>
      authenticate(
        await signedRequest(signingKeyOf(file.keyFile), { created: now }),
        deps(rotated, { now: NOW }),
      );
    refused(await check(old), "key_expired", 401);
    refused(await check(next), "key_expired", 401);
    expect(await check(current)).toMatchObject({ ok: true, key: { id: "ci-2025", caller: "ci" } });
    const after = await KeyRegistry.fromConfig({ keys: [{ ...current.config }, { ...next.config }] });
    const both = await Promise.all(
      [current, next].map(async (file) =>
        authenticate(
          await signedRequest(signingKeyOf(file.keyFile), { created: now }),
          deps(after, { now: NOW }),
        ),
      ),
    );
    expect(both.map((r) => r.ok && r.key.caller)).toEqual(["ci", "ci"]);
  });

  it("keys replay on the signed content, so the ECDSA twin signature (r, n-s) is a replay too", async () => {
    const shared = at();
    const request = await signedRequest(signing["ecdsa-p256-sha256"], { created: now, nonce: null });
    expect((await authenticate(request, shared)).ok).toBe(true);
    const field = request.headers.get("signature")!;
    const bytes = Uint8Array.from(atob(field.slice(field.indexOf(":") + 1, -1)), (c) => c.charCodeAt(0));
    const order = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
    const s = BigInt(`0x${Array.from(bytes.slice(32), (b) => b.toString(16).padStart(2, "0")).join("")}`);
    const twin = new Uint8Array(64);
    twin.set(bytes.slice(0, 32));
    twin.set(
      Uint8Array.from((order - s).toString(16).padStart(64, "0").match(/../g)!, (h) =>
        Number.parseInt(h, 16),
      ),
      32,
    );
    const replayed = withHeaders(request, (h) => h.set("signature", `sig1=:${encodeBase64(twin)}:`));
    const fresh = await authenticate(replayed, at());
    expect(fresh.ok).toBe(true);
    refused(await authenticate(replayed, shared), "replay");
  });

  it("fails closed when the replay store fails", async () => {
    const broken: ReplayStore = { claim: () => Promise.reject(new Error("KV unreachable")) };
    await expect(authenticate(await sign(), at({ replay: broken }))).rejects.toThrow("KV unreachable");
  });

  it("prefers a signature over an Authorization header", async () => {
    const request = withHeaders(await sign(), (h) =>
      h.set("authorization", "Bearer not-the-token-not-the-token-xx"),
    );
    expect(await authenticate(request, at())).toMatchObject({ ok: true, key: { id: key.id } });
  });
});

describe("bearer tokens", () => {
  const bearer = signing.bearer as Extract<SigningKey, { scheme: "bearer" }>;
  const request = async (token: string): Promise<HttpRequestParts> => ({
    method: "POST",
    url: GATEWAY_URL,
    headers: await signHttpRequest({
      method: "POST",
      url: GATEWAY_URL,
      key: { id: "ignored", scheme: "bearer", secret: token },
    }),
    body: new TextEncoder().encode(BODY),
  });

  it("accepts the right token, with no freshness or nonce to report", async () => {
    const result = await authenticate(await request(bearer.secret), at());
    expect(result).toEqual({ ok: true, key: expect.objectContaining({ id: "bearer-1", scheme: "bearer" }) });
  });

  it("refuses a wrong token, a truncated one and other Authorization schemes", async () => {
    refused(await authenticate(await request(`${bearer.secret}x`), at()), "unknown_key", 401);
    refused(await authenticate(await request(bearer.secret.slice(0, -1)), at()), "unknown_key", 401);
    const basic = withHeaders(await request(bearer.secret), (h) =>
      h.set("authorization", "Basic dXNlcjpwdw=="),
    );
    refused(await authenticate(basic, at()), "missing_credentials", 401);
  });

  it("accepts a token configured only as its sha256, and enforces the validity window", async () => {
    const generated = await generateHttpKey({
      id: "hashed",
      caller: "ops",
      scheme: "bearer",
      policy: ALLOW_DEMO,
    });
    expect(generated.config.secret).toMatch(/^sha256:[0-9a-f]{64}$/);
    const token = generated.keyFile.secret!;
    const live = await KeyRegistry.fromConfig({ keys: [generated.config] });
    expect(await authenticate(await request(token), deps(live))).toMatchObject({
      ok: true,
      key: { id: "hashed" },
    });
    const expired = await KeyRegistry.fromConfig({
      keys: [{ ...generated.config, notAfter: "2020-01-01T00:00:00Z" }],
    });
    refused(await authenticate(await request(token), deps(expired)), "key_expired");
  });

  it("can replay: the scheme has no freshness (documented as weaker)", async () => {
    const shared = at();
    const sent = await request(bearer.secret);
    expect((await authenticate(sent, shared)).ok).toBe(true);
    expect((await authenticate(sent, shared)).ok).toBe(true);
  });

  it("cannot be used to sign: a bearer key id in Signature-Input is refused", async () => {
    const pretender = {
      id: "bearer-1",
      scheme: "hmac-sha256" as const,
      secret: encodeBase64(new Uint8Array(32)),
    };
    refused(
      await authenticate(await signedRequest(pretender, { created: now }), at()),
      "unsupported_algorithm",
    );
  });
});

describe("replay claims", () => {
  it("last exactly as long as the request could still pass the freshness check", async () => {
    const claims: [string, number][] = [];
    const recording: ReplayStore = {
      claim: async (key, ttl) => {
        claims.push([key, ttl]);
        return true;
      },
    };
    const sign = (overrides: Parameters<typeof signedRequest>[1]) =>
      signedRequest(signing.ed25519, overrides);
    await authenticate(await sign({ created: now, nonce: "a" }), at({ replay: recording }));
    await authenticate(
      await sign({ created: now - 100, expires: now + 10, nonce: "b" }),
      at({ replay: recording }),
    );
    await authenticate(await sign({ created: now + 20, nonce: "c" }), at({ replay: recording }));
    await authenticate(
      await sign({ created: now, nonce: "d" }),
      at({ replay: recording, maxAgeSeconds: 60, maxSkewSeconds: 5 }),
    );
    expect(claims.map(([, ttl]) => ttl)).toEqual([330, 40, 350, 65]);
    expect(claims[0]![0]).toBe("ed25519-1\nnonce:a");
    expect(Math.max(...claims.map(([, ttl]) => ttl))).toBeLessThanOrEqual(replayWindowSeconds());
  });
});
