import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer as createPlainServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { send } from "../../../cli/http.ts";
import { createCertificateAuthority, issueCertificate } from "../../../infra/pki.ts";

// `req` and `jobs` reach the gateway through cli/http.ts, not fetch: what they send and read must be what
// fetch gave them, over http and over https with a private CA named by NODE_EXTRA_CA_CERTS.

/** Answers with what it received: method, headers and body, as JSON, split into several chunks. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const text = JSON.stringify({
      method: req.method,
      path: req.url,
      signature: req.headers.signature ?? null,
      body: Buffer.concat(chunks).toString("utf8"),
    });
    res.writeHead(207, "Partly", { "content-type": "application/json", "x-multi": ["a", "b"] });
    res.write(text.slice(0, 10));
    setTimeout(() => res.end(text.slice(10)), 20);
  });
}

function listening(server: ReturnType<typeof createPlainServer>): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

describe("cli/http send", () => {
  const plain = createPlainServer(echo);
  let plainHost = "";
  beforeAll(async () => {
    plainHost = await listening(plain);
  });
  afterAll(() => new Promise<void>((resolve) => plain.close(() => resolve())));

  it("sends method, headers and body, and reads status, headers and a chunked body", async () => {
    const answer = await send(`http://${plainHost}/v1/rpc?x=1`, {
      method: "POST",
      headers: [["signature", "sig1=:abc:"]],
      body: new TextEncoder().encode('{"agent":"rpcutil"}'),
    });
    expect(answer.status).toBe(207);
    expect(answer.statusText).toBe("Partly");
    expect(answer.ok).toBe(true);
    expect(answer.headers.get("Content-Type")).toBe("application/json");
    expect(answer.headers.get("x-multi")).toBe("a, b");
    expect(answer.headers.get("x-absent")).toBeNull();
    expect(await answer.json()).toEqual({
      method: "POST",
      path: "/v1/rpc?x=1",
      signature: "sig1=:abc:",
      body: '{"agent":"rpcutil"}',
    });
  });

  it("rejects a URL that is neither http nor https, and a refused connection", async () => {
    await expect(send("ftp://127.0.0.1/", { method: "GET", headers: [] })).rejects.toThrow(/http or https/);
    const closed = createPlainServer();
    const host = await listening(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(send(`http://${host}/`, { method: "GET", headers: [] })).rejects.toThrow(/ECONNREFUSED/);
  });

  it("speaks https to a gateway whose CA the environment names, and refuses it otherwise", async () => {
    const ca = await createCertificateAuthority("choria-edge test CA");
    const leaf = await issueCertificate(ca, "localhost", { ipAddresses: ["127.0.0.1"] });
    const tls = createTlsServer({ cert: leaf.certPem, key: leaf.keyPem }, echo);
    const dir = await mkdtemp(join(tmpdir(), "choria-edge-http-"));
    try {
      const host = await listening(tls);
      const caFile = join(dir, "ca.pem");
      await writeFile(caFile, ca.certPem);
      // NODE_EXTRA_CA_CERTS is read when a process starts, so the request runs in a child of its own.
      const script = `import { send } from ${JSON.stringify(join(import.meta.dirname, "../../../cli/http.ts"))};
        send("https://${host}/x", { method: "GET", headers: [] })
          .then(async (a) => console.log(a.status, (await a.json()).path))
          .catch((e) => console.log("refused", e.code ?? e.message));`;
      const run = (env: NodeJS.ProcessEnv) =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
            env,
          });
          let out = "";
          child.stdout.on("data", (chunk: Buffer) => {
            out += chunk.toString();
          });
          child.on("error", reject);
          child.on("exit", () => resolve(out.trim()));
        });
      const { NODE_EXTRA_CA_CERTS: _, ...withoutCa } = process.env;
      expect(await run({ ...withoutCa, NODE_EXTRA_CA_CERTS: caFile })).toBe("207 /x");
      expect(await run(withoutCa)).toMatch(/^refused (UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED)/);
    } finally {
      await new Promise<void>((resolve) => tls.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
