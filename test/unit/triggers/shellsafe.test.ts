// biome-ignore-all lint/suspicious/noTemplateCurlyInString: trigger templates are written ${inputs.NAME}
import { describe, expect, it } from "vitest";
import { isShellSafe } from "../../../lib/triggers/mod.ts";

describe("isShellSafe", () => {
  it("refuses what Choria's shellsafe validator refuses", () => {
    for (const fragment of ["`", "$", ";", "|", "&&", ">", "<"])
      expect(isShellSafe(`thing${fragment}thing`)).toBe(false);
  });

  it("also refuses line breaks and NUL", () => {
    for (const fragment of ["\n", "\r", "\0"]) expect(isShellSafe(`thing${fragment}thing`)).toBe(false);
  });

  it("refuses the classic injections", () => {
    for (const value of ["; rm -rf /", "`reboot`", "$(id)", "${HOME}", "a\nrm -rf /", "a && b", "a || b"])
      expect(isShellSafe(value)).toBe(false);
  });

  it("accepts ordinary values, including a lone & like Choria does", () => {
    for (const value of ["", "ok", "ok ok ok", "refs/heads/feature/x-1.2", "R&D", "a=b,c:d", "naïve"])
      expect(isShellSafe(value)).toBe(true);
  });
});
