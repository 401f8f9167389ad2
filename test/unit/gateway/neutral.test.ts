import { expect, it } from "vitest";
import { workerMetafile } from "../../../infra/build.ts";

// workerd refuses a Worker whose bundle imports a node: module it does not provide; the integration test
// in workerd finds that late and slowly, this finds which file brought it in.
it("the Worker entry reaches no node: module, through any package surface", async () => {
  const metafile = await workerMetafile();
  const nodeImports = Object.entries(metafile.inputs).flatMap(([file, input]) =>
    input.imports.filter((i) => i.path.startsWith("node:")).map((i) => `${file} → ${i.path}`),
  );
  expect(nodeImports).toEqual([]);
});
