// Certificate parsing and chain checks, with a full X.509 library: nodes, the Node and Lambda gateways,
// the CLI and infra/ check certificates; the Worker only signs (der.ts reads its own certificate), so these
// stay out of mod.ts and out of its bundle.
export { parseCertificate, TrustStore, validityAt } from "./certs.ts";
export { x509 } from "./x509.ts";
