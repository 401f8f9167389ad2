import { join } from "node:path";

/** Where the local stack keeps its state (demo PKI, logs): `CHORIA_EDGE_HOME`, else `./.choria-edge`. */
export function stateDir(): string {
  return process.env.CHORIA_EDGE_HOME ?? join(process.cwd(), ".choria-edge");
}

export function pkiDir(): string {
  return join(stateDir(), "pki");
}
