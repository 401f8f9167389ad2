import { describe, expect, it } from "vitest";
import { jsonLineLogger } from "../../../../lib/log/log.ts";
import {
  type AuditEvent,
  type AuthResult,
  auditLine,
  authenticate,
  signHttpRequest,
} from "../../../../lib/security/http/mod.ts";
import { BODY, deps, GATEWAY_URL, keyring, signedRequest } from "./support.ts";

const { registry, signing } = await keyring();

/** The audit event a gateway would write for an authentication outcome. */
function eventFor(result: AuthResult, url: string): AuditEvent {
  return result.ok
    ? {
        decision: "accepted",
        status: 200,
        key: result.key.id,
        caller: result.key.caller,
        scheme: result.key.scheme,
        callerid: result.key.callerId,
        method: "POST",
        path: new URL(url).pathname + new URL(url).search,
        ...(result.nonce === undefined ? {} : { nonce: result.nonce }),
      }
    : {
        decision: "refused",
        reason: result.problem,
        detail: result.detail,
        status: result.status,
        path: url,
      };
}

describe("auditLine", () => {
  it("writes one JSON line with the decision, and only known fields", () => {
    const line = auditLine({
      decision: "refused",
      reason: "forbidden",
      detail: "agent puppet is not in the key's agents",
      status: 403,
      key: "ci-1",
      agent: "puppet",
      targets: null,
      at: new Date("2025-01-02T03:04:05Z"),
      body: "{}",
      signature: "sig1=:AAAA:",
    } as AuditEvent);
    expect(line).not.toContain("\n");
    expect(JSON.parse(line)).toEqual({
      time: "2025-01-02T03:04:05.000Z",
      audit: "choria-edge.gateway",
      decision: "refused",
      status: 403,
      reason: "forbidden",
      detail: "agent puppet is not in the key's agents",
      key: "ci-1",
      agent: "puppet",
      targets: null,
    });
  });

  it("stamps the time in the field the JSON logs use (lib/log/log.ts)", () => {
    const at = new Date("2025-01-02T03:04:05Z");
    let logged = "";
    jsonLineLogger(
      (line) => {
        logged = line;
      },
      {},
      () => at,
    )("info", "x");
    const line = JSON.parse(auditLine({ decision: "accepted", status: 200, at }));
    expect(Object.keys(line)[0]).toBe("time");
    expect(line.time).toBe(JSON.parse(logged).time);
    expect(line.ts).toBeUndefined();
  });

  it("drops the query string of the path and clips long text", () => {
    const parsed = JSON.parse(
      auditLine({ decision: "refused", status: 400, path: "/v1/rpc?token=abc", detail: "x".repeat(2000) }),
    );
    expect(parsed.path).toBe("/v1/rpc");
    expect(parsed.detail.length).toBeLessThanOrEqual(513);
  });

  it("contains no secret, signature, token or body for any outcome of authentication", async () => {
    const bearer = signing.bearer as { secret: string };
    const hmac = signing["hmac-sha256"] as { secret: string };
    const url = `${GATEWAY_URL}?api_key=query-secret`;
    const signed = await signedRequest(signing["hmac-sha256"], { url });
    const signatureValue = signed.headers.get("signature")!;
    const bearerHeaders = await signHttpRequest({
      method: "POST",
      url,
      key: { id: "x", scheme: "bearer", secret: bearer.secret },
    });
    const wrongBearer = new Headers({ authorization: `Bearer ${bearer.secret.replace(/.$/, "!")}xyz` });
    const body = new TextEncoder().encode(BODY);
    const requests = [
      signed,
      { ...signed, body: new TextEncoder().encode(`${BODY} `) },
      {
        ...signed,
        headers: new Headers({
          "signature-input": signed.headers.get("signature-input")!,
          signature: "sig1=:bad",
        }),
      },
      { method: "POST", url, headers: bearerHeaders, body },
      { method: "POST", url, headers: wrongBearer, body },
    ];
    const lines: string[] = [];
    for (const request of requests)
      lines.push(auditLine(eventFor(await authenticate(request, deps(registry)), url)));
    expect(lines.map((l) => JSON.parse(l).decision)).toEqual([
      "accepted",
      "refused",
      "refused",
      "accepted",
      "refused",
    ]);
    const secrets = [
      bearer.secret,
      hmac.secret,
      signatureValue.slice(signatureValue.indexOf(":") + 1, -1),
      BODY,
      "ping",
      "query-secret",
    ];
    for (const line of lines) for (const secret of secrets) expect(line).not.toContain(secret);
  });
});
