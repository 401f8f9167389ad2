import { build } from "esbuild";
import { expect, it } from "vitest";

it("lib/data bundles for any runtime with no package and no node: module (the gateway runs it in workerd)", async () => {
  const result = await build({
    entryPoints: ["lib/data/mod.ts"],
    bundle: true,
    write: false,
    platform: "neutral",
    format: "esm",
    packages: "external",
    metafile: true,
    logLevel: "silent",
  });
  const imports = Object.values(result.metafile.outputs).flatMap((output) => output.imports);
  expect(imports.filter((i) => i.external).map((i) => i.path)).toEqual([]);
  expect(Object.keys(result.metafile.inputs).sort()).toEqual([
    "lib/clock/clock.ts",
    "lib/clock/duration.ts",
    "lib/clock/manual.ts",
    "lib/clock/mod.ts",
    "lib/data/keys.ts",
    "lib/data/locks.ts",
    "lib/data/mod.ts",
    "lib/data/store.ts",
    "lib/kv/bucket.ts",
    "lib/kv/memory.ts",
    "lib/kv/mod.ts",
  ]);
});
