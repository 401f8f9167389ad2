import { expect, it } from "vitest";
import { workerMetafile } from "../../../infra/build.ts";

// The Worker signs with a PEM it is given (no X.509 library), takes its trigger file as JSON (no YAML
// parser), never talks to AWS, and builds its schemas with zod/mini imported as a namespace, so that only
// the schema types it uses are kept (classic zod's chainable methods bring every type, a `{ z }` import
// every locale), and signs an nkey login with lib/security/nkeys-lite.ts in place of @nats-io/nkeys and
// its tweetnacl (wrangler.toml's [alias]). Each of these is a large share of a bundle Cloudflare limits
// and every cold isolate parses.
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
