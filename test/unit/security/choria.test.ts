import {
  createHash,
  createPrivateKey,
  sign as nodeSign,
  verify as nodeVerify,
  X509Certificate,
} from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { certnameFromCallerId } from "../../../lib/protocol/ids.ts";
import { decodeSecureReply, decodeSecureRequest, type SecureRequest } from "../../../lib/protocol/secure.ts";
import { TrustStore } from "../../../lib/security/certs.ts";
import {
  callerIdForKey,
  loadSigner,
  type RequestSigner,
  replyHash,
  sealReply,
  signRequest,
  type VerifyPolicy,
  verifyReplyHash,
  verifySecureRequest,
} from "../../../lib/security/choria.ts";
import { type TestPki, testPki } from "../../support/pki.ts";

// The inner request text as Go would marshal it, including Go's \u003c escaping and non-ASCII text, so the
// signature must cover exactly these UTF-8 bytes.
function requestJson(callerid: string): string {
  return JSON.stringify({
    protocol: "choria:request:1",
    message: '{"agent":"rpcutil","action":"ping","data":{"note":"caf\u00e9 \\u003cb\\u003e"}}',
    envelope: {
      requestid: "9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e",
      senderid: "client1.example.net",
      callerid,
      collective: "mcollective",
      agent: "rpcutil",
      ttl: 60,
      time: 1718000000,
      filter: { fact: [], cf_class: [], agent: ["rpcutil"], identity: [], compound: [] },
    },
  });
}

let pki: TestPki;
let trust: TrustStore;
let client: RequestSigner;
let gateway: RequestSigner;
let policy: VerifyPolicy;

beforeAll(async () => {
  pki = await testPki();
  trust = TrustStore.fromPem(pki.caPem);
  policy = { trust };
  [client, gateway] = await Promise.all([loadSigner(pki.client), loadSigner(pki.gateway)]);
});

async function signedBy(signer: RequestSigner, callerid: string): Promise<SecureRequest> {
  const decoded = decodeSecureRequest(await signRequest(signer, requestJson(callerid)));
  if (!decoded.ok) throw decoded.error;
  return decoded.value;
}

describe("loadSigner", () => {
  it("takes the certname from the certificate and keeps the PEM exactly", () => {
    expect(client.certname).toBe("rip.mcollective");
    expect(client.pubcert).toBe(pki.client.certPem);
  });

  it("imports a PKCS#1 RSA PRIVATE KEY and signs the same bytes as with PKCS#8", async () => {
    const pkcs1Pem = createPrivateKey(pki.client.keyPem).export({ type: "pkcs1", format: "pem" }) as string;
    const pkcs1Signer = await loadSigner({ certPem: pki.client.certPem, keyPem: pkcs1Pem });
    // PKCS#1 v1.5 signatures are deterministic, so equal keys give equal signatures.
    expect(await pkcs1Signer.sign("hello")).toBe(await client.sign("hello"));
  });

  it("refuses a key that does not belong to the certificate", async () => {
    await expect(loadSigner({ certPem: pki.client.certPem, keyPem: pki.gateway.keyPem })).rejects.toThrow(
      /does not belong/,
    );
  });

  it("refuses unusable material", async () => {
    await expect(loadSigner({ certPem: "junk", keyPem: pki.client.keyPem })).rejects.toThrow(/certificate/);
    await expect(loadSigner({ certPem: pki.client.certPem, keyPem: pki.client.certPem })).rejects.toThrow(
      /key/,
    );
  });
});

describe("signatures are byte-compatible with OpenSSL (and so with Go's rsa.VerifyPKCS1v15)", () => {
  it("OpenSSL verifies our signature and produces the identical one", async () => {
    const message = requestJson("choria=rip.mcollective");
    const signature = await client.sign(message);
    expect(signature).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    const publicKey = new X509Certificate(pki.client.certPem).publicKey;
    expect(
      nodeVerify("sha256", Buffer.from(message, "utf8"), publicKey, Buffer.from(signature, "base64")),
    ).toBe(true);
    const opensslSignature = nodeSign("sha256", Buffer.from(message, "utf8"), pki.client.keyPem);
    expect(opensslSignature.toString("base64")).toBe(signature);
  });

  it("we verify a signature made by OpenSSL", async () => {
    const message = requestJson("choria=rip.mcollective");
    const signature = nodeSign("sha256", Buffer.from(message, "utf8"), pki.client.keyPem).toString("base64");
    const secure = {
      protocol: "choria:secure:request:1" as const,
      message,
      signature,
      pubcert: pki.client.certPem,
    };
    expect(await verifySecureRequest(secure, "choria=rip.mcollective", policy)).toEqual({
      ok: true,
      certname: "rip.mcollective",
      privileged: false,
    });
  });
});

describe("verifySecureRequest", () => {
  it("round-trips a signed request", async () => {
    const secure = await signedBy(client, "choria=rip.mcollective");
    expect(secure.pubcert).toBe(pki.client.certPem);
    expect(secure.message).toBe(requestJson("choria=rip.mcollective"));
    expect(await verifySecureRequest(secure, "choria=rip.mcollective", policy)).toEqual({
      ok: true,
      certname: "rip.mcollective",
      privileged: false,
    });
  });

  it("refuses a tampered message", async () => {
    const secure = await signedBy(client, "choria=rip.mcollective");
    const tampered = { ...secure, message: secure.message.replace('"ttl":60', '"ttl":61') };
    expect(tampered.message).not.toBe(secure.message);
    expect(await verifySecureRequest(tampered, "choria=rip.mcollective", policy)).toMatchObject({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("refuses a tampered signature", async () => {
    const secure = await signedBy(client, "choria=rip.mcollective");
    const bytes = Buffer.from(secure.signature, "base64");
    bytes[10] = bytes[10]! ^ 0x01;
    const tampered = { ...secure, signature: bytes.toString("base64") };
    expect(await verifySecureRequest(tampered, "choria=rip.mcollective", policy)).toMatchObject({
      ok: false,
      reason: "bad_signature",
    });
    const notBase64 = { ...secure, signature: "***" };
    expect(await verifySecureRequest(notBase64, "choria=rip.mcollective", policy)).toMatchObject({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("accepts a signature wrapped the way Ruby's Base64.encode64 wraps it", async () => {
    const secure = await signedBy(client, "choria=rip.mcollective");
    const rubyStyle = `${secure.signature.match(/.{1,60}/g)!.join("\n")}\n`;
    expect(rubyStyle.split("\n").length).toBeGreaterThan(5);
    const result = await verifySecureRequest(
      { ...secure, signature: rubyStyle },
      "choria=rip.mcollective",
      policy,
    );
    expect(result.ok).toBe(true);
  });

  it("refuses a certificate from an untrusted CA", async () => {
    const untrusted = await loadSigner(pki.untrusted);
    const secure = await signedBy(untrusted, "choria=rip.mcollective");
    expect(await verifySecureRequest(secure, "choria=rip.mcollective", policy)).toMatchObject({
      ok: false,
      reason: "untrusted_certificate",
    });
  });

  it("refuses an expired certificate", async () => {
    const expired = await loadSigner(pki.expired);
    const secure = await signedBy(expired, "choria=expired.mcollective");
    expect(await verifySecureRequest(secure, "choria=expired.mcollective", policy)).toMatchObject({
      ok: false,
      reason: "certificate_expired",
    });
    const lastValidHour = new Date(new X509Certificate(pki.expired.certPem).validTo).getTime() - 3_600_000;
    const then = await verifySecureRequest(secure, "choria=expired.mcollective", {
      ...policy,
      now: new Date(lastValidHour),
    });
    expect(then).toEqual({ ok: true, certname: "expired.mcollective", privileged: false });
  });

  it("refuses an ordinary certificate acting for another callerid", async () => {
    const secure = await signedBy(client, "choria=bob.mcollective");
    const result = await verifySecureRequest(secure, "choria=bob.mcollective", policy);
    expect(result).toMatchObject({ ok: false, reason: "callerid_mismatch" });
  });

  it("lets a privileged certificate act for any callerid", async () => {
    for (const callerid of ["choria=bob.mcollective", "choria=anything.example.com", "jwt=someone"]) {
      const secure = await signedBy(gateway, callerid);
      expect(await verifySecureRequest(secure, callerid, policy)).toEqual({
        ok: true,
        certname: certnameFromCallerId(callerid),
        privileged: true,
      });
    }
  });

  it("uses configured privileged patterns instead of the defaults", async () => {
    const secure = await signedBy(gateway, "choria=bob.mcollective");
    const strict = { ...policy, privilegedPatterns: [/^nobody$/] };
    expect(await verifySecureRequest(secure, "choria=bob.mcollective", strict)).toMatchObject({
      ok: false,
      reason: "callerid_mismatch",
    });
  });

  it("refuses a certname that is not on the allow list", async () => {
    const node = await loadSigner(pki.nodes[0]!);
    const secure = await signedBy(node, "choria=node1.example.net");
    expect(await verifySecureRequest(secure, "choria=node1.example.net", policy)).toMatchObject({
      ok: false,
      reason: "not_allowed",
    });
    const widened = { ...policy, allowedPatterns: [/\.example\.net$/g] };
    // Twice, because a global pattern used with test() would fail every other call.
    expect((await verifySecureRequest(secure, "choria=node1.example.net", widened)).ok).toBe(true);
    expect((await verifySecureRequest(secure, "choria=node1.example.net", widened)).ok).toBe(true);
  });

  it("refuses insecure requests and callerids without a certname", async () => {
    const secure = await signedBy(client, "choria=rip.mcollective");
    const insecure = { ...secure, signature: "insecure", pubcert: "insecure" };
    expect(await verifySecureRequest(insecure, "choria=rip.mcollective", policy)).toMatchObject({
      ok: false,
      reason: "insecure",
    });
    const registration = {
      ...secure,
      signature: btoa("insecure registration"),
      pubcert: "insecure registration",
    };
    expect(await verifySecureRequest(registration, "choria=rip.mcollective", policy)).toMatchObject({
      ok: false,
      reason: "insecure",
    });
    expect(await verifySecureRequest(secure, "rip.mcollective", policy)).toMatchObject({
      ok: false,
      reason: "bad_callerid",
    });
  });

  it("refuses a pubcert that is not a certificate", async () => {
    const secure = await signedBy(client, "choria=rip.mcollective");
    const result = await verifySecureRequest(
      { ...secure, pubcert: "-----BEGIN" },
      "choria=rip.mcollective",
      policy,
    );
    expect(result).toMatchObject({ ok: false, reason: "bad_certificate" });
  });
});

describe("secure replies", () => {
  const reply =
    '{"protocol":"choria:reply:1","message":"{\\"action\\":\\"ping\\",\\"statuscode\\":0,\\"statusmsg\\":\\"OK\\",\\"data\\":{\\"pong\\":1718000000,\\"n\\":\\"caf\u00e9\\"}}","envelope":{"requestid":"9f4a8d2c6e1b4a7d8c3e2f1a0b9c8d7e","senderid":"node1.example.net","agent":"rpcutil","time":1718000001}}';

  it("hashes the UTF-8 bytes with SHA-256 into padded base64", async () => {
    const expected = createHash("sha256").update(reply, "utf8").digest("base64");
    expect(await replyHash(reply)).toBe(expected);
    expect(await replyHash("")).toBe("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  });

  it("seals a reply whose hash verifies, and detects tampering", async () => {
    const decoded = decodeSecureReply(await sealReply(reply));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value.message).toBe(reply);
    expect(await verifyReplyHash(decoded.value)).toBe(true);
    expect(
      await verifyReplyHash({ ...decoded.value, message: reply.replace("1718000001", "1718000002") }),
    ).toBe(false);
    expect(await verifyReplyHash({ ...decoded.value, hash: `${decoded.value.hash.slice(0, -2)}A=` })).toBe(
      false,
    );
  });
});

describe("callerIdForKey", () => {
  it("maps a key id to choria=<key>.mcollective by default", () => {
    expect(callerIdForKey("ci-deploy")).toEqual({
      ok: true,
      callerid: "choria=ci-deploy.mcollective",
      certname: "ci-deploy.mcollective",
    });
    expect(callerIdForKey("svc", { type: "edge", suffix: ".choria" })).toEqual({
      ok: true,
      callerid: "edge=svc.choria",
      certname: "svc.choria",
    });
  });

  it("refuses ids Go would truncate, bad types and privileged-looking names", () => {
    expect(callerIdForKey("")).toMatchObject({ ok: false });
    expect(callerIdForKey("a b")).toMatchObject({ ok: false });
    expect(callerIdForKey("a/b")).toMatchObject({ ok: false });
    expect(callerIdForKey("ok", { type: "Choria" })).toMatchObject({ ok: false });
    expect(callerIdForKey("x.privileged")).toMatchObject({ ok: false });
  });

  it("produces callerids that round-trip through Go's callerid pattern", () => {
    for (const key of ["a", "ci_deploy-2", "team.app"]) {
      const mapped = callerIdForKey(key);
      expect(mapped.ok && certnameFromCallerId(mapped.callerid)).toBe(mapped.ok && mapped.certname);
    }
  });
});
