import { describe, expect, it } from "vitest";
import { readOptions } from "../../../lib/config/mod.ts";
import { natsConnectionChoice, natsOptionSpecs } from "../../../lib/transport/options.ts";

function str(argv: string[]) {
  const result = readOptions(natsOptionSpecs(), "CHORIA_EDGE_TEST_", argv, {});
  if (!result.ok) throw new Error(JSON.stringify(result));
  return result.str;
}

describe("natsConnectionChoice", () => {
  it("builds one auth method and TLS files from the options", () => {
    expect(natsConnectionChoice(str(["--user", "u", "--password", "p", "--tls-ca", "/ca.pem"]))).toEqual({
      ok: true,
      auth: { type: "userpass", user: "u", pass: "p" },
      tls: { caFile: "/ca.pem", certFile: undefined, keyFile: undefined },
    });
    expect(natsConnectionChoice(str([]))).toEqual({ ok: true, auth: { type: "none" } });
  });

  it("refuses two auth methods instead of picking one", () => {
    expect(natsConnectionChoice(str(["--token", "t", "--credentials", "/x.creds"]))).toMatchObject({
      ok: false,
      error: expect.stringContaining("choose one"),
    });
  });

  it("reads a side's options under its prefix", () => {
    const read = readOptions(natsOptionSpecs("federation-"), "P_", ["--federation-token", "t"], {});
    expect(read.ok && natsConnectionChoice(read.str, "federation-")).toEqual({
      ok: true,
      auth: { type: "token", token: "t" },
    });
  });
});
