import { build } from "esbuild";
import { expect, it } from "vitest";

// workerd refuses a Worker whose bundle imports a node: module it does not provide; the integration test
// in workerd finds that late and slowly, this finds which file brought it in.
it("the Worker entry reaches no node: module, through any package surface", async () => {
  const result = await build({
    entryPoints: ["functions/cloudflare.ts"],
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*", "node:*"],
    logLevel: "silent",
  });
  const nodeImports = Object.entries(result.metafile.inputs).flatMap(([file, input]) =>
    input.imports.filter((i) => i.path.startsWith("node:")).map((i) => `${file} → ${i.path}`),
  );
  expect(nodeImports).toEqual([]);
});
