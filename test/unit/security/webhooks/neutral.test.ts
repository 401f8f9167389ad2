import { build } from "esbuild";
import { expect, it } from "vitest";

it("bundles for workerd with no node: module, taking the web build of @octokit/webhooks-methods", async () => {
  // The export conditions wrangler resolves with when it bundles a Worker.
  const result = await build({
    entryPoints: ["lib/security/webhooks/mod.ts"],
    bundle: true,
    write: false,
    platform: "neutral",
    format: "esm",
    mainFields: ["module", "main"],
    conditions: ["workerd", "worker", "browser"],
    metafile: true,
    logLevel: "silent",
  });
  const imports = Object.values(result.metafile.outputs).flatMap((output) => output.imports);
  expect(imports.filter((i) => i.external).map((i) => i.path)).toEqual([]);
  const inputs = Object.keys(result.metafile.inputs);
  expect(inputs).toContain("node_modules/@octokit/webhooks-methods/dist-web/index.js");
  expect(inputs.filter((input) => input.includes("dist-node"))).toEqual([]);
});
