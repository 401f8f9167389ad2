// Filter matching benchmark (numbers, not pass/fail), in this process, no I/O: how long a simulated node
// fleet takes to evaluate request filters, including the identity regex from issue 12 that took 14 s of
// CPU on JavaScript's backtracking engine and now runs on RE2 (lib/protocol/re2.ts).
// BENCH_QUICK=1 divides the fleet by 10.
import { generateFleet } from "../../lib/node/fleet.ts";
import { type Filter, matchFilter, normaliseFilter } from "../../lib/protocol/filter.ts";

const quick = process.env.BENCH_QUICK === "1" ? 10 : 1;
const fleet = generateFleet({ count: Math.floor(5000 / quick) });

// Identities built to make the pathological pattern backtrack: 22+ characters of [a-z0-9.] and no `!`.
const longNames = fleet.map((node, i) => ({ ...node, identity: `${"a".repeat(30)}.${i}.example.net` }));

const cases: [string, Partial<Filter>, typeof fleet][] = [
  ["identity exact", { identity: ["node0042.mcollective.example.net"] }, fleet],
  ["identity /regex/", { identity: ["/^node00[0-4]\\d\\./"] }, fleet],
  [
    "identity /^(?:[a-z0-9.]|[a-z0-9.]){22}!/ (issue 12)",
    { identity: ["/^(?:[a-z0-9.]|[a-z0-9.]){22}!/"] },
    longNames,
  ],
  [
    "class /^roles::/ + fact role=web",
    { cf_class: ["/^roles::/"], fact: [{ fact: "role", operator: "==", value: "web" }] },
    fleet,
  ],
  [
    "fact =~ + memory_gb >= 8",
    {
      fact: [
        { fact: "country", operator: "=~", value: "/^(mt|nl)$/" },
        { fact: "memory_gb", operator: ">=", value: "8" },
      ],
    },
    fleet,
  ],
  ["compound", { compound: [[{ expr: "with('roles::web') and fact('os.family') matches '^Deb'" }]] }, fleet],
];

for (const [name, partial, nodes] of cases) {
  const filter = normaliseFilter(partial);
  for (const node of nodes.slice(0, 200)) matchFilter(filter, node); // warm the caches and the JIT
  const started = performance.now();
  let matched = 0;
  for (const node of nodes) if (matchFilter(filter, node)) matched++;
  const ms = performance.now() - started;
  console.log(
    `${name.padEnd(58)} ${nodes.length} nodes ${ms.toFixed(1).padStart(8)} ms  (${((ms * 1000) / nodes.length).toFixed(2)} µs/node, ${matched} matched)`,
  );
}
