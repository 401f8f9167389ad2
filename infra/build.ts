// Bundles the runtime entry points with esbuild. Type checking is `tsc --noEmit`, run before this.
import { build } from "esbuild";

const started = performance.now();
await build({
  entryPoints: { "choria-edge": "functions/cli.ts" },
  outdir: "dist",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  packages: "external",
  sourcemap: true,
  logLevel: "warning",
});
console.log(`built dist/ in ${Math.round(performance.now() - started)} ms`);
