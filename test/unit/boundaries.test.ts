// Every lib/ package shows a small surface in its mod.ts (and, where it has Node-only parts, a second one in
// node.ts, so that what the Worker imports never meets a node: module); code outside a package (the
// deployed entries in functions/, the CLI, infra/, other packages) imports only those. Tests may reach
// behind them.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

const IMPORTERS = ["lib", "functions", "cli", "infra"];
const SURFACES = ["mod.ts", "node.ts"];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** lib/<name>/, and any folder below it with a mod.ts of its own (lib/security/http). */
function packageFolders(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .map((name) => join(dir, name))
      .filter((path) => statSync(path).isDirectory())
      .flatMap((path) => [path, ...walk(path)]);
  const top = readdirSync("lib").map((name) => join("lib", name));
  return [...top, ...walk("lib").filter((dir) => !top.includes(dir) && hasMod(dir))];
}

function hasMod(dir: string): boolean {
  try {
    return statSync(join(dir, "mod.ts")).isFile();
  } catch {
    return false;
  }
}

/** The package a file belongs to: the deepest package folder holding it. */
function packageOf(file: string, packages: readonly string[]): string | undefined {
  return packages
    .filter((pkg) => file.startsWith(`${pkg}/`))
    .sort((a, b) => b.length - a.length)
    .at(0);
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*)["'](\.{1,2}\/[^"']+)["']/g;

/** Imports that cross into a package through anything but its mod.ts, as "importer → target". */
function crossings(files: ReadonlyMap<string, string>, packages: readonly string[]): string[] {
  const found: string[] = [];
  for (const [file, text] of files) {
    const home = packageOf(file, packages);
    for (const match of text.matchAll(SPECIFIER)) {
      const target = normalize(join(dirname(file), match[1]!));
      const pkg = packageOf(target, packages);
      if (pkg === undefined || pkg === home || SURFACES.some((name) => target === join(pkg, name))) continue;
      found.push(`${file} → ${target}`);
    }
  }
  return found;
}

describe("package boundaries", () => {
  const packages = packageFolders();

  it("every lib/ package has a mod.ts", () => {
    expect(packages.filter((pkg) => !hasMod(pkg))).toEqual([]);
  });

  it("code outside a package imports only its mod.ts or node.ts", () => {
    const files = new Map(
      IMPORTERS.flatMap(sourceFiles).map(
        (file) => [relative(".", file), readFileSync(file, "utf8")] as const,
      ),
    );
    expect(files.size).toBeGreaterThan(100);
    expect(crossings(files, packages)).toEqual([]);
  });

  it("names an entry that reaches behind a mod.ts, and lets a package use its own files", () => {
    const files = new Map([
      [
        "functions/broker.ts",
        'import { route } from "../lib/federation/route.ts";\nimport { x } from "../lib/log/mod.ts";',
      ],
      ["lib/federation/service.ts", 'import { route } from "./route.ts";'],
      ["lib/security/choria.ts", 'const m = await import("./http/keys.ts");'],
    ]);
    expect(crossings(files, ["lib/federation", "lib/log", "lib/security", "lib/security/http"])).toEqual([
      "functions/broker.ts → lib/federation/route.ts",
      "lib/security/choria.ts → lib/security/http/keys.ts",
    ]);
  });
});
