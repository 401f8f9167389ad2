import { expect, it } from "vitest";
import { workerMetafile } from "../../../infra/build.ts";

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
