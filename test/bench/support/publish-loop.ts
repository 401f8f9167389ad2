// The floor under a broker's fan-out: one process that only publishes, through the same nats.js client and
// bus, copies of a payload of the broker's packet size to the fan-out bench's node subjects, in windows of
// requests handed over in one tick as the broker does with a read's worth of messages.
// Args: <url> <requests> <targets per request> <payload bytes> <requests per tick>.
// Prints one JSON line: { seconds, cpuUs } for the whole loop, the final flush included.
import { connectNats } from "../../../lib/transport/node.ts";

const [url, requests, targets, bytes, perTick] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const bus = await connectNats({ servers: url, name: "bench-publish-loop" });
const payload = new TextEncoder().encode("Q".repeat(Number(bytes)));
const subjects = Array.from(
  { length: Number(requests) * Number(targets) },
  (_, i) => `mcollective.node.n${i % 50_000}`,
);
const started = performance.now();
const cpu = process.cpuUsage();
let next = 0;
for (let tick = 0; next < subjects.length; tick++) {
  const end = Math.min(subjects.length, next + Number(perTick) * Number(targets));
  for (; next < end; next++) bus.publish(subjects[next] as string, payload);
  // Let the client write what it holds, and every few ticks wait for the server, as the broker's pace would.
  await (tick % 10 === 9 ? bus.flush() : new Promise((resolve) => setImmediate(resolve)));
}
await bus.flush();
const used = process.cpuUsage(cpu);
process.stdout.write(
  `${JSON.stringify({ seconds: (performance.now() - started) / 1000, cpuUs: used.user + used.system })}\n`,
);
await bus.close();
