// The Node binaries the Lambda bundle is tested under: this machine's own, and each version Lambda runs
// (nodejs22.x, nodejs24.x) as infra/node-runtimes.sh fetches them into the cache.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface NodeRuntime {
  /** What the test names: "20.20.2 (this machine)", "22.23.5". */
  label: string;
  version: string;
  bin: string;
  /** Why the binary is not there and how to get it, or undefined when it is. */
  missing?: string;
}

const SCRIPT = join(import.meta.dirname, "../../infra/node-runtimes.sh");

export function nodeRuntimes(): NodeRuntime[] {
  const pinned = /^VERSIONS="([^"]*)"$/m.exec(readFileSync(SCRIPT, "utf8"))?.[1]?.split(/\s+/) ?? [];
  const cache =
    process.env.CHORIA_EDGE_NODES ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "choria-edge/node");
  const own = process.version.slice(1);
  return [
    { label: `${own} (this machine)`, version: own, bin: process.execPath },
    ...pinned.map((version) => {
      const bin = join(cache, `node-${version}`, "bin/node");
      const missing = existsSync(bin) ? undefined : `${bin} is missing: run \`bash infra/node-runtimes.sh\``;
      return { label: version, version, bin, ...(missing ? { missing } : {}) };
    }),
  ];
}
