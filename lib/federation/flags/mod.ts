// The broker's flags alone, a package of their own so that `broker --help` reads them without
// lib/federation's surface, which loads the broker, the NATS client and the schemas.
export { BROKER_ENV_PREFIX, BROKER_OPTIONS, type BrokerSide, brokerUsage } from "./options.ts";
