import { expect, it } from "vitest";
import { HOOK_USAGE } from "../../../cli/hook.ts";
import { WEBHOOK_SCHEMES } from "../../../lib/security/webhooks/mod.ts";

// cli/hook.ts spells the schemes out so that `hook --help` need not load lib/security/webhooks.
it("hook's usage lists every webhook scheme --scheme accepts", () => {
  expect(HOOK_USAGE).toContain(`--scheme <s>           ${WEBHOOK_SCHEMES.join(" | ")} (default github)`);
});
