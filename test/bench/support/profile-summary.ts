// Summarises a V8 CPU profile (`node --cpu-prof`, e.g. the gateway's through BENCH_GATEWAY_NODE_ARGS):
// how busy the process was, self time by package and the functions with the most self time.
//   npx tsx test/bench/support/profile-summary.ts <file.cpuprofile> [top=30]
// Self time is sampled wall time on the main thread: on a loaded machine a thread that wakes another
// (a WebCrypto job handed to the pool, a socket write to a local server) is often preempted right there,
// so those frames read high; process CPU time (cpuMs) is the measure to compare, this says where to look.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function frameName({ callFrame }: ProfileNode): string {
  const where = callFrame.url
    .replace(/.*node_modules\//, "npm:")
    .replace(/^file:\/\/.*?\/(lib|functions|cli|test)\//, "$1/");
  return `${callFrame.functionName || "(anonymous)"} ${where}:${callFrame.lineNumber}`;
}

/** The package a frame belongs to: an npm package, a lib/ package, a node: module, or the VM itself. */
function packageOf(frame: string): string {
  const npm = /npm:(@[^/]+\/[^/]+|[^/]+)/.exec(frame);
  if (npm?.[1]) return npm[1];
  const own = /\s((?:lib|functions|cli|test)\/[^/:]+)/.exec(frame);
  if (own?.[1]) return own[1];
  const builtin = /\snode:(internal\/[^/:]+|[^/:]+)/.exec(frame);
  return builtin?.[1] ? `node:${builtin[1]}` : frame.slice(0, frame.lastIndexOf(" "));
}

const [file, top = "30"] = process.argv.slice(2);
if (file === undefined) throw new Error("usage: profile-summary.ts <file.cpuprofile> [top]");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const names = new Map(profile.nodes.map((node) => [node.id, frameName(node)]));
const self = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const micros = profile.timeDeltas[i] ?? 0;
  const name = names.get(id) ?? "?";
  total += micros;
  self.set(name, (self.get(name) ?? 0) + micros);
});
const busyEntries = [...self].filter(([name]) => !name.startsWith("(idle)"));
const busy = busyEntries.reduce((sum, [, micros]) => sum + micros, 0);
const share = (micros: number) => `${((100 * micros) / busy).toFixed(1).padStart(5)}%`;
console.log(`${(total / 1000).toFixed(0)} ms profiled, busy ${((100 * busy) / total).toFixed(0)}%`);
const byPackage = new Map<string, number>();
for (const [name, micros] of busyEntries)
  byPackage.set(packageOf(name), (byPackage.get(packageOf(name)) ?? 0) + micros);
console.log("\nself time by package (share of busy time)");
for (const [name, micros] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 20))
  console.log(`${share(micros)}  ${name}`);
console.log("\nfunctions with the most self time");
for (const [name, micros] of busyEntries.sort((a, b) => b[1] - a[1]).slice(0, Number(top)))
  console.log(`${share(micros)}  ${name}`);
