// The collector's flags alone, a package of their own so that `collector --help` reads them without
// lib/results/jobs's surfaces, which load the collector, the NATS client and the schemas.
export { COLLECTOR_ENV_PREFIX, COLLECTOR_OPTIONS, collectorUsage } from "./options.ts";
