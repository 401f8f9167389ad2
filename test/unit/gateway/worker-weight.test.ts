import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { buildWorkers, workerMetafile } from "../../../infra/build.ts";

// What the Worker leaves out, each a large share of a bundle Cloudflare limits and every cold isolate
// parses:
// - an X.509 library: it signs with a PEM it is given;
// - a YAML parser: it takes its trigger file as JSON;
// - the AWS SDK: it never talks to AWS;
// - classic zod and zod's other locales: its schemas are zod/mini, imported as a namespace, so only the
//   schema types it uses are kept (a `{ z }` import brings every locale);
// - @nats-io/nkeys and tweetnacl: an nkey login signs with lib/security/nkeys-lite.ts (wrangler.toml's
//   [alias]);
// - the standardwebhooks package and its own SHA-256 and base64: Standard Webhooks' HMAC is WebCrypto's.
const HEAVY = [
  /node_modules\/yaml\//,
  /node_modules\/@peculiar\//,
  /node_modules\/asn1js\//,
  /node_modules\/tsyringe\//,
  /node_modules\/@aws-sdk\//,
  /node_modules\/zod\/v4\/locales\/(?!en\.js)/,
  /node_modules\/zod\/v4\/classic\//,
  /node_modules\/tweetnacl\//,
  /node_modules\/@nats-io\/nkeys\//,
  /node_modules\/(standardwebhooks|fast-sha256|@stablelib)\//,
];

it("the Worker bundle holds none of the heavy packages it does not need", async () => {
  const metafile = await workerMetafile();
  const heavy = Object.values(metafile.outputs).flatMap((output) =>
    Object.entries(output.inputs)
      .filter(([file, { bytesInOutput }]) => bytesInOutput > 0 && HEAVY.some((pattern) => pattern.test(file)))
      .map(([file]) => file),
  );
  // Who imports the first one, to say where to cut.
  const importers = Object.entries(metafile.inputs)
    .filter(([, input]) => input.imports.some((i) => i.path === heavy[0]))
    .map(([file]) => file);
  expect({ heavy: heavy.slice(0, 5), importers }).toEqual({ heavy: [], importers: [] });
});

// The test above and the bench read esbuild's metafile; Cloudflare gets what wrangler makes. They agree
// only while wrangler bundles as workerMetafile does: the same aliases, and no kept names (wrangler's
// default wraps every function and class, ~5% more).
it("wrangler's bundle is the one the metafile describes, within 1%", async () => {
  const dir = await mkdtemp(join(tmpdir(), "choria-edge-worker-weight-"));
  try {
    const [metafile, workers] = await Promise.all([workerMetafile(), buildWorkers(dir)]);
    const described = Object.values(metafile.outputs).reduce((total, output) => total + output.bytes, 0);
    expect(Math.abs(workers.bytes / described - 1)).toBeLessThan(0.01);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 120_000);
