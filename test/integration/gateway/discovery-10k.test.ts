// Discovery at 10,000 nodes through the gateway and two brokers, against a simulator process met cold
// (just started) and warm: every run must find every node. CHORIA_EDGE_10K_RUNS sets the runs of each
// kind (`npm run test:10k` runs 20 and 20); by default a few, to keep `npm test` short.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BigFleet, startBigFleet } from "./big-fleet.ts";

const NODES = Number(process.env.CHORIA_EDGE_10K_NODES ?? 10_000);
const RUNS = Number(process.env.CHORIA_EDGE_10K_RUNS ?? 2);
const LONG = RUNS > 2;

let fleet: BigFleet;

beforeAll(async () => {
  fleet = await startBigFleet(NODES);
}, 120_000);

afterAll(async () => {
  await fleet?.stop();
}, 60_000);

interface Answer {
  discovery: { complete: boolean; found: number; reason: string };
  summary: { discovered: number; ok: number; no_reply: number; discovery_ms: number; elapsed_ms: number };
}

async function discoverAll(): Promise<Answer> {
  const response = await fleet.post({ agent: "rpcutil", action: "ping", discovery_timeout: 10, timeout: 20 });
  expect(response.status).toBe(200);
  return (await response.json()) as Answer;
}

function report(kind: string, answers: Answer[]) {
  const ms = (pick: (a: Answer) => number) =>
    answers
      .map(pick)
      .sort((a, b) => a - b)
      .join(" ");
  console.log(
    `${kind}: found ${answers.map((a) => a.discovery.found).join(" ")}; discovery ms ${ms((a) => a.summary.discovery_ms)}; total ms ${ms((a) => a.summary.elapsed_ms)}`,
  );
}

describe(`discovery of ${NODES} simulated nodes through the gateway and two brokers`, () => {
  it(
    `finds every node on ${RUNS} cold fleets (a fresh simulator process each time)`,
    async () => {
      const answers: Answer[] = [];
      for (let run = 0; run < RUNS; run++) {
        await fleet.restartNodes();
        answers.push(await discoverAll());
      }
      report("cold", answers);
      for (const answer of answers) {
        expect(answer.discovery).toMatchObject({ found: NODES, reason: "stall", complete: false });
        expect(answer.summary).toMatchObject({ discovered: NODES, ok: NODES, no_reply: 0 });
      }
    },
    LONG ? RUNS * 60_000 : 120_000,
  );

  it(
    `finds every node on ${RUNS} runs against a warm fleet`,
    async () => {
      const answers: Answer[] = [];
      for (let run = 0; run < RUNS; run++) answers.push(await discoverAll());
      report("warm", answers);
      for (const answer of answers) {
        expect(answer.discovery.found).toBe(NODES);
        expect(answer.summary).toMatchObject({ discovered: NODES, ok: NODES, no_reply: 0 });
      }
    },
    LONG ? RUNS * 30_000 : 60_000,
  );
});
