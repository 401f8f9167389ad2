import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { buildCli } from "../../../infra/build.ts";

// `choria-edge req --help` loads main and req's chunk with what they import statically. zod from
// node_modules is ~100 files, every locale among them; bundled and imported as a namespace, a chunk holds
// only the schemas used (a `{ z }` import anywhere brings every locale back into the shared chunk).
it("the chunks `req` loads hold no zod locale beyond en, and no zod from node_modules", async () => {
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-cli-weight-"));
  try {
    const { outputs } = await buildCli(dir);
    const names = Object.keys(outputs);
    const loaded = new Set<string>();
    const load = (name: string | undefined) => {
      if (name === undefined || loaded.has(name)) return;
      loaded.add(name);
      for (const i of outputs[name]?.imports ?? []) if (i.kind === "import-statement") load(i.path);
    };
    load(names.find((name) => name.endsWith("/choria-edge.mjs")));
    load(names.find((name) => /\/chunks\/req-[^/]+\.mjs$/.test(name)));
    const found = [...loaded].flatMap((name) => [
      ...Object.keys(outputs[name]?.inputs ?? {}).filter((input) =>
        /zod\/v4\/locales\/(?!en\.js)/.test(input),
      ),
      ...(outputs[name]?.imports ?? [])
        .filter((i) => i.external && /^zod(\/|$)/.test(i.path))
        .map((i) => i.path),
    ]);
    expect(loaded.size).toBeGreaterThan(1);
    expect(found).toEqual([]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
