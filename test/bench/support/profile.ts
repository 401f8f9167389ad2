// Self time by function of a V8 .cpuprofile (as `node --cpu-prof` writes it), and by file or package:
//   npx tsx test/bench/support/profile.ts <file.cpuprofile> [top=30]
// Self time is what the samples landed in, so it names the code that burns the CPU, not its callers.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

/**
 * Self time per function and per file (dependencies folded into their package), highest first; and the
 * total (inclusive) time of the project's own functions, which says which of its steps the self time
 * belongs to.
 */
export function selfTimes(profile: CpuProfile): {
  functions: SelfTime[];
  files: SelfTime[];
  inclusive: SelfTime[];
  totalMs: number;
} {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    // A sample's time is the gap to the next one.
    const delta = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + delta);
  }
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    totalUs += us;
    const fn = frameName(frame);
    functions.set(fn, (functions.get(fn) ?? 0) + us);
    const file = packageOf(shortUrl(frame.url)) || frame.functionName || "(native)";
    files.set(file, (files.get(file) ?? 0) + us);
    // Each own function on the stack once, however often it recurses.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const up = byId.get(at)!.callFrame;
      if (!/^(lib|functions|test)\//.test(shortUrl(up.url))) continue;
      const name = frameName(up);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + us);
    }
  }
  const ranked = (map: Map<string, number>) =>
    [...map].map(([name, us]) => ({ name, ms: us / 1000, share: us / totalUs })).sort((a, b) => b.ms - a.ms);
  return {
    functions: ranked(functions),
    files: ranked(files),
    inclusive: ranked(inclusive),
    totalMs: totalUs / 1000,
  };
}

function frameName(frame: ProfileNode["callFrame"]): string {
  const where = shortUrl(frame.url);
  return `${frame.functionName || "(anonymous)"} ${where ? `${where}:${frame.lineNumber + 1}` : ""}`.trim();
}

function shortUrl(url: string): string {
  const cut = url.indexOf("/main/");
  return (cut >= 0 ? url.slice(cut + "/main/".length) : url.replace(/^file:\/\//, "")).replace(/\?.*$/, "");
}

function packageOf(path: string): string {
  const modules = path.lastIndexOf("node_modules/");
  if (modules < 0) return path;
  const rest = path.slice(modules + "node_modules/".length).split("/");
  return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
}

if (import.meta.filename === process.argv[1]) {
  const [file, top = "30"] = process.argv.slice(2);
  if (file === undefined) {
    console.error("usage: profile.ts <file.cpuprofile> [top]");
    process.exit(2);
  }
  const { functions, files, inclusive, totalMs } = selfTimes(
    JSON.parse(readFileSync(file, "utf8")) as CpuProfile,
  );
  const line = (row: SelfTime) =>
    `${row.ms.toFixed(0).padStart(8)} ms ${(row.share * 100).toFixed(1).padStart(5)}%  ${row.name}`;
  console.log(`${file}: ${totalMs.toFixed(0)} ms sampled\n\nby function (self):`);
  for (const row of functions.slice(0, Number(top))) console.log(line(row));
  console.log("\nby file or package (self):");
  for (const row of files.slice(0, 15)) console.log(line(row));
  console.log("\nown functions (total, callees included):");
  for (const row of inclusive.slice(0, 20)) console.log(line(row));
}
