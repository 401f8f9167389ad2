// The choria-edge package this code runs from. Found by walking up from this module, because the module
// sits in lib/config/ of a checkout but in dist/ or dist/chunks/ of an installed package, and a fixed
// relative path would be right in only one of them.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const NAME = "choria-edge";
let found: { root: string; version: string } | undefined;

function locate(): { root: string; version: string } {
  if (found !== undefined) return found;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === NAME) {
        found = { root: dir, version: pkg.version ?? "unknown" };
        return found;
      }
    } catch {
      // No package.json here, or not ours: keep climbing.
    }
    if (dirname(dir) === dir)
      throw new Error(`cannot find the ${NAME} package.json above ${import.meta.url}`);
  }
}

/** The folder holding choria-edge's package.json. */
export function packageRoot(): string {
  return locate().root;
}

export function packageVersion(): string {
  return locate().version;
}

/** The `choria-edge` command's entry script, which runs the sources in a checkout and dist/ when installed. */
export function cliEntry(): string {
  return join(locate().root, "bin", "choria-edge.mjs");
}
