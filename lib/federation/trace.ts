import type { SeenByHop } from "../protocol/mod.ts";

type HopRole = "client" | "broker (request)" | "broker (reply)" | "node" | "other";

export interface TracedHop {
  role: HopRole;
  in: string;
  processor: string;
  out: string;
}

/** Names what each recorded hop was, knowing who sent the request and which node answered. */
export function describeHops(hops: readonly SeenByHop[], who: { client: string; node: string }): TracedHop[] {
  return hops.map(([inbound, processor, outbound], index) => {
    let role: HopRole = "other";
    if (processor.includes("choria_request_transformer")) role = "broker (request)";
    else if (processor.includes("choria_reply_transformer")) role = "broker (reply)";
    else if (processor === who.node) role = "node";
    else if (index === 0 || processor === who.client) role = "client";
    return { role, in: inbound, processor, out: outbound };
  });
}

export interface TraceReport {
  identity: string;
  cluster: string;
  requestId: string;
  roundTripMs: number;
  hops: TracedHop[];
  /** The RPC reply's status line, e.g. "OK (statuscode 0)". */
  status: string;
}

/** The route as `choria-edge trace` prints it: one line per hop, in order, then the round trip. */
export function renderTrace(report: TraceReport): string {
  const roleWidth = Math.max(...report.hops.map((h) => h.role.length), 4);
  const lines = report.hops.map(
    (hop, i) =>
      `  ${String(i + 1).padStart(2)}. ${hop.role.padEnd(roleWidth)}  ${hop.in} → ${hop.processor} → ${hop.out}`,
  );
  return [
    `route of rpcutil#ping to ${report.identity} through federation cluster ${report.cluster} (request ${report.requestId})`,
    "",
    ...lines,
    "",
    `round trip ${report.roundTripMs.toFixed(1)} ms, ${report.hops.length} hops; reply: ${report.status}`,
  ].join("\n");
}
