#!/usr/bin/env node
// In a checkout (cli/ beside bin/) the TypeScript sources run through tsx's loader, so an edit never
// waits for a build and a stale dist/ is never what runs; an installed package ships only dist/.
import { existsSync } from "node:fs";

const sources = new URL("../cli/main.ts", import.meta.url);
if (existsSync(sources)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(sources.href);
} else {
  await import("../dist/choria-edge.mjs");
}
