// vitest global setup: the interop tests need go-choria and a current nats-server, which infra/peers.sh
// builds from the Go module proxy into its cache (minutes the first time, nothing once built).
import { spawnSync } from "node:child_process";
import { join } from "node:path";

export default function setup(): void {
  const script = join(import.meta.dirname, "..", "..", "infra", "peers.sh");
  const result = spawnSync("bash", [script], { stdio: ["ignore", "ignore", "inherit"] });
  if (result.status !== 0)
    throw new Error(`bash infra/peers.sh failed (exit ${result.status ?? result.signal})`);
  // The Node versions Lambda runs, for the Lambda bundle's tests. Without them only those tests fail, each
  // saying how to fetch them, so a machine that cannot (offline, not x86_64) still runs everything else.
  const nodes = join(import.meta.dirname, "..", "..", "infra", "node-runtimes.sh");
  spawnSync("bash", [nodes], { stdio: ["ignore", "ignore", "inherit"] });
}
