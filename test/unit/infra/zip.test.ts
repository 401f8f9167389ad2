import { describe, expect, it } from "vitest";
import { createZip, readZip } from "../../../infra/zip.ts";

const text = (s: string) => new TextEncoder().encode(s);

describe("zip", () => {
  it("round-trips names, contents and modes, and is reproducible", () => {
    const entries = [
      { name: "index.mjs", data: text("export const handler = 1;\n".repeat(200)), mode: 0o644 },
      { name: "dir/ünïcode.txt", data: text("hé"), mode: 0o755 },
      { name: "empty", data: new Uint8Array(0), mode: 0o644 },
    ];
    const archive = createZip(entries);
    expect(readZip(archive)).toEqual(entries);
    expect(createZip(entries).equals(archive)).toBe(true);
    expect(archive.byteLength).toBeLessThan(1000);
  });

  it("detects a corrupted entry", () => {
    const archive = createZip([{ name: "a.txt", data: text("a".repeat(100)) }]);
    const damaged = Buffer.from(archive);
    damaged[40] = damaged[40]! ^ 0xff;
    expect(() => readZip(damaged)).toThrow();
  });
});
