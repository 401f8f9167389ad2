// `npm run chaos [-- --short] [-- --only <scenario>]`: the reliability suite of issue 12. Each scenario
// starts real processes on 127.0.0.1, breaks something, and returns one row; the table of all rows is
// printed at the end, and the exit status is 1 if any row lost more than a killed process held in
// flight, duplicated a reply, or has books that do not balance.
import { parseArgs } from "node:util";
import { SCENARIOS, type Scenario } from "./scenarios.ts";
import { emptyRow, peakRssBytes, type Row, rowPasses, Scope, type Size } from "./support.ts";

/** Bounds each scenario, so that a hang is a failed row rather than a run that never ends. */
const LIMIT_MS: Record<Size, number> = { full: 180_000, short: 45_000 };

export async function runScenario(scenario: Scenario, size: Size): Promise<Row> {
  const scope = new Scope(size);
  let timer: NodeJS.Timeout | undefined;
  try {
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`not done within ${LIMIT_MS[size] / 1000} s`)),
        LIMIT_MS[size],
      );
    });
    return await Promise.race([scenario.run(scope), limit]);
  } catch (err) {
    const row = emptyRow(scenario.name);
    row.booksBalanced = false;
    row.problems.push(err instanceof Error ? err.message : String(err));
    row.peakRssMiB = scope.peakRssMiB();
    return row;
  } finally {
    clearTimeout(timer);
    await scope.close();
  }
}

export function renderTable(rows: Row[]): string {
  const header = [
    "scenario",
    "sent",
    "answered",
    "lost (in flight)",
    "dup",
    "recovery s",
    "peak RSS MiB",
    "books",
    "refused by reason",
  ];
  const cells = rows.map((r) => [
    r.scenario,
    String(r.sent),
    String(r.answered),
    `${r.lost} (${r.inFlightOfKilled})`,
    String(r.duplicated),
    r.recoverySeconds === null ? "-" : r.recoverySeconds.toFixed(2),
    String(r.peakRssMiB),
    `${r.booksBalanced ? "ok" : "UNBALANCED"}${rowPasses(r) ? "" : " FAIL"}`,
    Object.entries(r.refused)
      .sort(([, a], [, b]) => b - a)
      .map(([reason, n]) => `${reason} ${n}`)
      .join(", ") || "-",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const numeric = new Set([1, 2, 3, 4, 5, 6]);
  const line = (c: string[]) =>
    c
      .map((v, i) =>
        i === c.length - 1 ? v : numeric.has(i) ? v.padStart(widths[i]!) : v.padEnd(widths[i]!),
      )
      .join("  ");
  const problems = rows.flatMap((r) => r.problems.map((p) => `  ${r.scenario}: ${p}`));
  return [
    line(header),
    "-".repeat(line(header).length),
    ...cells.map(line),
    ...(problems.length ? ["", "problems:", ...problems] : []),
  ].join("\n");
}

if (import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({
    options: { short: { type: "boolean", default: false }, only: { type: "string", multiple: true } },
  });
  const size: Size = values.short ? "short" : "full";
  const chosen = SCENARIOS.filter((s) => !values.only || values.only.some((name) => s.name.includes(name)));
  if (chosen.length === 0)
    throw new Error(
      `no scenario matches ${values.only?.join(", ")}; there are ${SCENARIOS.map((s) => s.name).join(", ")}`,
    );
  const started = Date.now();
  const rows: Row[] = [];
  for (const scenario of chosen) {
    const t0 = Date.now();
    const row = await runScenario(scenario, size);
    console.log(
      `${scenario.name}: ${rowPasses(row) ? "pass" : "FAIL"} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    rows.push(row);
  }
  // The nodes, collector and federation some scenarios host in this process count here, not in a row.
  const ownPeak = Math.round(peakRssBytes(process.pid) / 1024 / 1024);
  console.log(
    `\n${renderTable(rows)}\n\n${size} run of ${rows.length} scenarios in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
      `the runner's own peak RSS ${ownPeak} MiB`,
  );
  process.exitCode = rows.every(rowPasses) ? 0 : 1;
}
