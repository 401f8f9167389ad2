// Bundles and start-up: what a cold Worker, a cold Lambda and a CLI call pay before doing any work.
//  (a) the Workers bundle as `wrangler deploy --dry-run` makes it, gzip, and what weighs most in it;
//  (b) the Lambda bundle: importing dist/lambda/index.mjs until `handler` exists, in a fresh process each
//      time, against importing an empty module the same way (the Node start-up both pay), and then also
//      the chunks the first invocation imports;
//  (c) `choria-edge req --help`, the whole process, through the TypeScript loader (bin/) and from dist/,
//      against `node -e 0`.
// BENCH_QUICK=N divides the repetitions by N.
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { buildCli, buildLambda, buildWorkers, workerMetafile } from "../../infra/build.ts";
import { median } from "./support/processes.ts";
import { recordSummary } from "./support/summary.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const quick = Math.max(1, Number(process.env.BENCH_QUICK ?? 1));
const runs = Math.max(3, Math.floor(15 / quick));
const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

/** Wall time of a whole process, ms; throws when it fails so that a broken build never reads as fast. */
function timeProcess(args: string[]): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, args, { cwd: ROOT, encoding: "utf8" });
  const took = performance.now() - started;
  if (result.status !== 0) throw new Error(`node ${args.join(" ")} failed:\n${result.stderr}`);
  return took;
}

/**
 * Milliseconds a fresh Node process spends importing `file`, as the module itself measures it, and then
 * also the `later` modules (the chunks a Lambda's first invocation loads).
 */
function importMs(file: string, later: string[] = []): { first: number; all: number } {
  const script = `const t = performance.now(); const m = await import(${JSON.stringify(file)}); if (typeof m.handler !== "function" && !${JSON.stringify(file)}.endsWith("empty.mjs")) process.exit(3); const first = performance.now() - t; for (const f of ${JSON.stringify(later)}) await import(f); console.log(JSON.stringify({ first, all: performance.now() - t }));`;
  const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`importing ${file} failed:\n${result.stderr}`);
  return JSON.parse(result.stdout.trim());
}

/** The heaviest inputs of the Worker entry, by package (or our own folder), in minified bytes. */
async function workerWeights(): Promise<{ name: string; bytes: number }[]> {
  const metafile = await workerMetafile();
  const byName = new Map<string, number>();
  for (const output of Object.values(metafile.outputs))
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1];
      const name = pkg ?? input.split("/").slice(0, 2).join("/");
      byName.set(name, (byName.get(name) ?? 0) + bytesInOutput);
    }
  return [...byName]
    .map(([name, bytes]) => ({ name, bytes }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 10);
}

const dir = await mkdtemp(join(tmpdir(), "choria-edge-startup-"));
try {
  console.log("(a) Workers bundle");
  const workers = await buildWorkers(join(dir, "dist"));
  console.log(`wrangler --dry-run, minified ${kib(workers.bytes)}, gzip ${kib(workers.gzipBytes)}`);
  console.log("heaviest parts (esbuild metafile, minified, before gzip):");
  for (const { name, bytes } of await workerWeights())
    console.log(`  ${name.padEnd(32)} ${kib(bytes).padStart(10)}`);

  console.log(`\n(b) Lambda bundle import, fresh process each, median of ${runs}`);
  const lambda = await buildLambda(join(dir, "dist"));
  const empty = join(dir, "empty.mjs");
  await writeFile(empty, "export {};\n");
  const chunks = (await readdir(dirname(lambda.bundle)))
    .filter((name) => name.endsWith(".mjs") && name !== "index.mjs")
    .map((name) => join(dirname(lambda.bundle), name));
  const lambdaRuns = Array.from({ length: runs }, () => importMs(lambda.bundle, chunks));
  const lambdaMs = median(lambdaRuns.map((run) => run.first));
  // The gateway's chunks, which the first invocation imports: the rest of the cold start.
  const lambdaAllMs = median(lambdaRuns.map((run) => run.all));
  const emptyMs = median(Array.from({ length: runs }, () => importMs(empty).first));
  console.log(
    `index.mjs (${kib(lambda.bytes)})  ${lambdaMs.toFixed(1)} ms, with its ${chunks.length} chunks ${lambdaAllMs.toFixed(1)} ms   empty module ${emptyMs.toFixed(1)} ms`,
  );

  console.log(`\n(c) CLI start-up, whole process, median of ${runs}`);
  // In the project's dist/, where its packages resolve from node_modules as an installed CLI's would.
  await buildCli();
  const viaLoader = median(
    Array.from({ length: runs }, () => timeProcess([join(ROOT, "bin/choria-edge.mjs"), "req", "--help"])),
  );
  const fromDist = median(
    Array.from({ length: runs }, () => timeProcess([join(ROOT, "dist/choria-edge.mjs"), "req", "--help"])),
  );
  const bare = median(Array.from({ length: runs }, () => timeProcess(["-e", "0"])));
  console.log(
    `req --help: TS loader ${viaLoader.toFixed(0)} ms, dist ${fromDist.toFixed(0)} ms; node -e 0 ${bare.toFixed(0)} ms`,
  );

  recordSummary([
    {
      measure: "Workers bundle, gzip",
      figure: kib(workers.gzipBytes),
      goal: "≤ 100 KiB",
      reference: `minified ${kib(workers.bytes)}`,
    },
    {
      measure: "Lambda bundle import until handler exists",
      figure: `${lambdaMs.toFixed(0)} ms`,
      goal: "≤ 50 ms",
      reference: `empty module ${emptyMs.toFixed(1)} ms; with the chunks the first call loads ${lambdaAllMs.toFixed(0)} ms`,
    },
    {
      measure: "choria-edge req --help, whole process (dist | TS loader)",
      figure: `${fromDist.toFixed(0)} | ${viaLoader.toFixed(0)} ms`,
      goal: "≤ 150 ms",
      reference: `node -e 0 ${bare.toFixed(0)} ms`,
    },
  ]);
} finally {
  await rm(dir, { recursive: true, force: true });
}
