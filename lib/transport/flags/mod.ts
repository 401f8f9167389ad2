// The NATS flags alone, a package of their own so that a command's `--help` and its option errors read
// them without lib/transport's surface, which loads the NATS client and the schemas.
export { natsAuthOptionSpecs, natsOptionSpecs } from "./nats.ts";
