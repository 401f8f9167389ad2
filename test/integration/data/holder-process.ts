// A lock holder in a process of its own, for the test that kills it mid-run:
//   holder-process.ts <nats url> <bucket> <lock name> <ttl ms>
// Prints one line `held <token>` once it has the lock, then keeps it alive until it is killed.
import { DataStore, Locks } from "../../../lib/data/mod.ts";
import { NatsKvBucket } from "../../../lib/transport/kv-bucket.ts";
import { connectNats } from "../../../lib/transport/node.ts";

const [url, bucketName, name, ttl] = process.argv.slice(2);
if (!url || !bucketName || !name || !ttl)
  throw new Error("usage: holder-process.ts <url> <bucket> <lock> <ttl ms>");
const bus = await connectNats({ servers: url, name: "lock-holder" });
const bucket = await NatsKvBucket.open(bus.connection, { name: bucketName, ttlMs: 60_000 });
const lock = await new Locks(new DataStore(bucket)).acquire(name, {
  holder: `child-${process.pid}`,
  ttlMs: Number(ttl),
  timeoutMs: 10_000,
});
if (lock === undefined) throw new Error(`no lock ${name} within 10s`);
lock.keepAlive({
  onLost: (err) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  },
});
process.stdout.write(`held ${lock.token}\n`);
