import { expect, it } from "vitest";
import { REQ_USAGE } from "../../../cli/req.ts";
import { KEY_SCHEMES } from "../../../lib/security/http/mod.ts";

// cli/req.ts spells the schemes out so that `req --help` need not load lib/security/http.
it("req's usage lists every key scheme --generate-key accepts", () => {
  expect(REQ_USAGE).toContain(`--scheme <s>             ${KEY_SCHEMES.join(" | ")} (default ed25519)`);
});
