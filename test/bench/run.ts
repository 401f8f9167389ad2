// `npm run bench`: runs every benchmark in this folder, one after the other so that they do not compete
// for the machine's cores, each in its own process.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { printSummary, type SummaryRow } from "./support/summary.ts";

const here = import.meta.dirname;
const self = basename(import.meta.filename);
const only = process.argv.slice(2);
const benches = readdirSync(here)
  .filter((f) => f.endsWith(".ts") && f !== self)
  .filter((f) => only.length === 0 || only.some((name) => f.includes(name)))
  .sort();

const summaryDir = mkdtempSync(join(tmpdir(), "choria-edge-bench-"));
const summaryFile = join(summaryDir, "summary.jsonl");
let failed = 0;
for (const file of benches) {
  console.log(`\n=== ${file}`);
  const result = spawnSync(process.execPath, ["--import", "tsx", join(here, file)], {
    stdio: "inherit",
    env: { ...process.env, BENCH_SUMMARY_FILE: summaryFile },
  });
  if (result.status !== 0) {
    failed++;
    console.error(`${file} failed (${result.status ?? result.signal})`);
  }
}
let rows: SummaryRow[] = [];
try {
  rows = readFileSync(summaryFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as SummaryRow);
} catch {
  // No benchmark recorded a row.
}
rmSync(summaryDir, { recursive: true, force: true });
console.log("\n=== summary");
printSummary(rows);
process.exitCode = failed === 0 ? 0 : 1;
