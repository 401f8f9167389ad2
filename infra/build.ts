// Builds the deliverables with esbuild (type checking is `tsc --noEmit`, run before this):
//  - dist/choria-edge.mjs      the CLI, dependencies left to node_modules;
//  - dist/lambda/index.mjs     the Lambda gateway as one self-contained file, and dist/lambda.zip;
//  - dist/workers/             the Workers bundle exactly as `wrangler deploy --dry-run` makes it.
import { spawnSync } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import { build, type Metafile, type Plugin } from "esbuild";
import { ZipFile } from "yazl";

const ROOT = resolve(import.meta.dirname, "..");

/** CommonJS dependencies inside an ES module bundle still call `require` for Node built-ins. */
const REQUIRE_BANNER =
  "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

/**
 * Packages stay in node_modules, except:
 *  - @peculiar/x509 and what it imports: esbuild hoists every external import above the bundled code, so
 *    an external x509 would load (and its tsyringe would throw) before lib/security's reflect-metadata
 *    shim had run;
 *  - zod: from node_modules every command would load its ~100 files (every locale included) and build
 *    every schema type; bundled, a command's chunk holds the schemas it uses.
 */
const keepInBundle = new Set(["@peculiar/x509", "zod"]);

const externalPackages: Plugin = {
  name: "external-packages",
  setup(on) {
    on.onResolve({ filter: /^[^./]/ }, (args) => {
      const fromOurSources = !args.importer.includes("/node_modules/");
      const pkg = args.path.startsWith("@")
        ? args.path.split("/").slice(0, 2).join("/")
        : args.path.split("/")[0];
      return fromOurSources && !keepInBundle.has(pkg ?? "") ? { path: args.path, external: true } : undefined;
    });
  },
};

/** The metafile says which chunks each command loads and what is in them. */
export async function buildCli(outdir = join(ROOT, "dist")): Promise<Metafile> {
  await rm(join(outdir, "chunks"), { recursive: true, force: true });
  const result = await build({
    entryPoints: { "choria-edge": join(ROOT, "cli/main.ts") },
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    // One chunk per command (they are loaded by dynamic import): `req --help` parses only what req needs.
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    plugins: [externalPackages],
    banner: { js: REQUIRE_BANNER },
    sourcemap: true,
    metafile: true,
    logLevel: "warning",
  });
  return result.metafile;
}

// 1980-01-01 in local time, as the DOS field stores it: the earliest date it holds.
const EPOCH_1980 = new Date(1980, 0, 1);

export interface LambdaBuild {
  bundle: string;
  zip: string;
  bytes: number;
  zipBytes: number;
}

/**
 * ES modules with every dependency inside (Lambda's Node runtime loads `index.mjs` and calls the exported
 * `handler`), zipped for upload. `index.mjs` is small: what functions/lambda.ts imports dynamically is in
 * chunks beside it, loaded by the first invocation rather than by every cold start's import.
 */
export async function buildLambda(outdir = join(ROOT, "dist")): Promise<LambdaBuild> {
  const dir = join(outdir, "lambda");
  await rm(dir, { recursive: true, force: true });
  await build({
    entryPoints: { index: join(ROOT, "functions/lambda.ts") },
    outdir: dir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    splitting: true,
    chunkNames: "[name]-[hash]",
    minify: true,
    sourcemap: "linked",
    legalComments: "linked",
    banner: { js: REQUIRE_BANNER },
    logLevel: "warning",
  });
  const files = (await readdir(dir)).sort();
  const zip = join(outdir, "lambda.zip");
  const archive = new ZipFile();
  for (const name of files) {
    // A fixed time makes the archive reproducible, and only the DOS field (local time) keeps it so in every
    // time zone; Lambda needs the files readable by others.
    archive.addBuffer(await readFile(join(dir, name)), name, {
      mtime: EPOCH_1980,
      forceDosTimestamp: true,
      mode: 0o100644,
      compressionLevel: 9,
    });
  }
  archive.end();
  await pipeline(archive.outputStream, createWriteStream(zip));
  const bundle = join(dir, "index.mjs");
  return { bundle, zip, bytes: (await stat(bundle)).size, zipBytes: (await stat(zip)).size };
}

/** wrangler.toml's [alias] table (`"package" = "./file"` lines), with the files made absolute. */
async function workerAliases(): Promise<Record<string, string>> {
  const toml = await readFile(join(ROOT, "wrangler.toml"), "utf8");
  const table = /^\[alias\]\n((?:(?!\[).*\n)*)/m.exec(toml)?.[1] ?? "";
  return Object.fromEntries(
    [...table.matchAll(/^"([^"]+)"\s*=\s*"([^"]+)"/gm)].map(([, name = "", file = ""]) => [
      name,
      join(ROOT, file),
    ]),
  );
}

/**
 * The Worker entry bundled in memory as wrangler resolves it (workerd conditions, its aliases, `cloudflare:`
 * and `node:` left outside), for its metafile: which files and packages are in it, how big, and what they
 * import.
 */
export async function workerMetafile(): Promise<Metafile> {
  const result = await build({
    alias: await workerAliases(),
    entryPoints: [join(ROOT, "functions/cloudflare.ts")],
    bundle: true,
    minify: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "browser",
    conditions: ["workerd", "worker", "browser"],
    external: ["cloudflare:*", "node:*"],
    logLevel: "silent",
  });
  return result.metafile;
}

export interface WorkersBuild {
  script: string;
  bytes: number;
  gzipBytes: number;
}

/** Runs `wrangler deploy --dry-run --outdir`: the bundle Cloudflare would receive, without uploading. */
export async function buildWorkers(outdir = join(ROOT, "dist")): Promise<WorkersBuild> {
  const dir = join(outdir, "workers");
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const result = spawnSync(
    join(ROOT, "node_modules/.bin/wrangler"),
    ["deploy", "--dry-run", "--outdir", dir, "--config", join(ROOT, "wrangler.toml")],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" } },
  );
  if (result.status !== 0) throw new Error(`wrangler dry run failed:\n${result.stdout}\n${result.stderr}`);
  const script = join(dir, "cloudflare.js");
  const bytes = await readFile(script);
  return { script, bytes: bytes.byteLength, gzipBytes: gzipSync(bytes).byteLength };
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // `tsx infra/build.ts [cli] [lambda] [workers]`: all three unless named (npm pack needs only the CLI).
  const named = process.argv.slice(2);
  const wanted = (target: string) => named.length === 0 || named.includes(target);
  const started = performance.now();
  if (wanted("cli")) await buildCli();
  const lambda = wanted("lambda") ? await buildLambda() : undefined;
  const workers = wanted("workers") ? await buildWorkers() : undefined;
  console.log(`built dist/ in ${Math.round(performance.now() - started)} ms`);
  if (lambda)
    console.log(`  lambda   ${lambda.zip}  ${kib(lambda.zipBytes)} (index.mjs ${kib(lambda.bytes)})`);
  if (workers)
    console.log(`  workers  ${workers.script}  ${kib(workers.bytes)}, gzip ${kib(workers.gzipBytes)}`);
}
