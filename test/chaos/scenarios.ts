// Every chaos scenario, in the order the runner plays them; the name is what `--only` matches.
import { brokerKill } from "./broker-kill.ts";
import { collectorKill } from "./collector-kill.ts";
import { crossCollective } from "./cross-collective.ts";
import { malformedHttp } from "./malformed-http.ts";
import { malformedNats } from "./malformed-nats.ts";
import { proxyCut } from "./proxy-cut.ts";
import { serverRestarts } from "./restarts.ts";
import { stalledMember } from "./stalled-member.ts";
import type { Row, Scope } from "./support.ts";

export interface Scenario {
  name: string;
  run(scope: Scope): Promise<Row>;
}

export const SCENARIOS: Scenario[] = [
  { name: "broker-kill", run: brokerKill },
  { name: "server-restarts", run: serverRestarts },
  { name: "proxy-cut-federation", run: (scope) => proxyCut(scope, "federation") },
  { name: "proxy-cut-collective", run: (scope) => proxyCut(scope, "collective") },
  { name: "stalled-member", run: stalledMember },
  { name: "collector-kill", run: collectorKill },
  { name: "malformed-nats", run: malformedNats },
  { name: "cross-collective", run: crossCollective },
  { name: "malformed-http", run: malformedHttp },
];
