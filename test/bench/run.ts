// `npm run bench`: runs every benchmark in this folder, one after the other so that they do not compete
// for the machine's cores, each in its own process.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";

const here = import.meta.dirname;
const self = basename(import.meta.filename);
const only = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== self)
  .filter((f) => only.length === 0 || only.some((name) => f.includes(name)))
  .sort();

let failed = 0;
for (const file of benches) {
  console.log(`\n=== ${file}`);
  const result = spawnSync(process.execPath, ["--import", "tsx", join(here, file)], { stdio: "inherit" });
  if (result.status !== 0) {
    failed++;
    console.error(`${file} failed (${result.status ?? result.signal})`);
  }
}
process.exitCode = failed === 0 ? 0 : 1;
