// The one table `npm run bench` ends with: each benchmark records its headline measures here (as JSON
// lines in the file run.ts names), and run.ts prints them together once every benchmark has run. Run on
// its own, a benchmark prints its rows itself.
import { appendFileSync } from "node:fs";

export interface SummaryRow {
  measure: string;
  figure: string;
  /** What the project aims for; "" where a row is for information. */
  goal: string;
  /** The same-run figure the row is judged against (go-choria, direct NATS, ...). */
  reference: string;
}

export function recordSummary(rows: SummaryRow[]): void {
  const file = process.env.BENCH_SUMMARY_FILE;
  if (file) {
    appendFileSync(file, rows.map((row) => `${JSON.stringify(row)}\n`).join(""));
    return;
  }
  printSummary(rows);
}

export function printSummary(rows: SummaryRow[]): void {
  const header: SummaryRow = {
    measure: "measure",
    figure: "figure",
    goal: "goal",
    reference: "same-run reference",
  };
  const all = [header, ...rows];
  const width = (key: keyof SummaryRow) => Math.max(...all.map((row) => row[key].length));
  const line = (row: SummaryRow) =>
    `${row.measure.padEnd(width("measure"))}  ${row.figure.padStart(width("figure"))}  ${row.goal.padEnd(width("goal"))}  ${row.reference}`;
  console.log(`\n${line(header)}\n${"-".repeat(line(header).length)}`);
  for (const row of rows) console.log(line(row));
}
