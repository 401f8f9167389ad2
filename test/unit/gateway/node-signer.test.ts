import { beforeAll, describe, expect, it } from "vitest";
import { loadNodeSigner } from "../../../functions/node-crypto.ts";
import { loadSigner, type RequestSigner } from "../../../lib/security/mod.ts";
import { type TestPki, testPki } from "../../support/pki.ts";

let pki: TestPki;
let webCrypto: RequestSigner;
let onThread: RequestSigner;

beforeAll(async () => {
  pki = await testPki();
  [webCrypto, onThread] = await Promise.all([loadSigner(pki.gateway), loadNodeSigner(pki.gateway)]);
});

describe("the Node gateway's Choria signer", () => {
  it("gives the WebCrypto signer's certname, pubcert and (deterministic PKCS#1 v1.5) signatures", async () => {
    const message = '{"agent":"rpcutil","note":"caf\u00e9 \\u003cb\\u003e"}';
    expect(onThread.certname).toBe(webCrypto.certname);
    expect(onThread.pubcert).toBe(webCrypto.pubcert);
    expect(await onThread.sign(message)).toBe(await webCrypto.sign(message));
  });

  it("signs without a round trip through the thread pool: settled after microtasks alone", async () => {
    let signature: string | undefined;
    void onThread.sign("hello").then((value) => {
      signature = value;
    });
    for (let turn = 0; turn < 10; turn++) await Promise.resolve();
    expect(signature).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
  });

  it("keeps loadSigner's start-up checks", async () => {
    await expect(loadNodeSigner({ certPem: pki.client.certPem, keyPem: pki.gateway.keyPem })).rejects.toThrow(
      /does not belong/,
    );
  });
});
