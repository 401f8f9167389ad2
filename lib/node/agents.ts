import { isStatusCode, lookupFact, StatusCode } from "../protocol/mod.ts";
import type { NodeIdentity } from "./fleet.ts";

export interface ActionOutcome {
  statuscode: StatusCode;
  statusmsg: string;
  data: unknown;
}

export interface ActionContext {
  node: NodeIdentity;
  requestId: string;
  callerId: string;
  /** Unix seconds, for actions that report time (rpcutil#ping). */
  now: number;
}

type Action = (data: Record<string, unknown>, ctx: ActionContext) => ActionOutcome | Promise<ActionOutcome>;

export interface Agent {
  name: string;
  actions: Record<string, Action>;
}

const VERSION = "choria-edge-node 0.1.0";

const ok = (data: unknown): ActionOutcome => ({ statuscode: StatusCode.OK, statusmsg: "OK", data });
const failure = (statuscode: StatusCode, statusmsg: string): ActionOutcome => ({
  statuscode,
  statusmsg,
  data: {},
});

const rpcutil: Agent = {
  name: "rpcutil",
  actions: {
    ping: (_data, ctx) => ok({ pong: ctx.now }),
    inventory: (_data, { node }) =>
      ok({
        agents: node.agents,
        facts: node.facts,
        classes: node.classes,
        collectives: [node.collective],
        main_collective: node.collective,
        version: VERSION,
        data_plugins: [],
      }),
    agent_inventory: (_data, { node }) =>
      ok({ agents: node.agents.map((agent) => ({ agent, name: agent, version: VERSION })) }),
    // go-choria reads the fact with a gjson path, as fact filters do (os.family, disks.0.size, disks.#).
    // go-choria's rpcutil does not enforce the DDL's required input: no fact is an empty fact name and a
    // null value, OK, and so it is here.
    get_fact: (data, { node }) => {
      const fact = typeof data.fact === "string" ? data.fact : "";
      return ok({ fact, value: fact === "" ? null : (lookupFact(node.facts, fact) ?? null) });
    },
  },
};

const MAX_SLEEP_SECONDS = 30;

/** A demo agent whose actions take data and can fail, for showing per-node status end to end. */
const demo: Agent = {
  name: "demo",
  actions: {
    echo: (data, { node }) => ok({ ...data, identity: node.identity }),
    fail: (data) =>
      failure(
        isStatusCode(data.code) && data.code !== StatusCode.OK ? data.code : StatusCode.Aborted,
        failReason(data),
      ),
    sleep: async (data) => {
      if (data.seconds === undefined) return failure(StatusCode.MissingData, "seconds is required");
      const seconds = data.seconds;
      if (typeof seconds !== "number" || !(seconds >= 0 && seconds <= MAX_SLEEP_SECONDS)) {
        return failure(StatusCode.InvalidData, `seconds must be a number from 0 to ${MAX_SLEEP_SECONDS}`);
      }
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
      return ok({ slept: seconds });
    },
  },
};

function failReason(data: Record<string, unknown>): string {
  return typeof data.message === "string" && data.message !== "" ? data.message : "demo failure requested";
}

export const builtinAgents: readonly Agent[] = [rpcutil, demo];

/** Runs one action, turning unknown actions and thrown errors into the statuses a Choria server sends. */
export async function dispatch(
  agents: ReadonlyMap<string, Agent>,
  agentName: string,
  action: string,
  data: Record<string, unknown>,
  ctx: ActionContext,
): Promise<ActionOutcome> {
  const agent = agents.get(agentName);
  if (agent === undefined || !ctx.node.agents.includes(agentName)) {
    return failure(StatusCode.UnknownAction, `Unknown agent ${agentName}`);
  }
  const run = Object.hasOwn(agent.actions, action) ? agent.actions[action] : undefined;
  if (run === undefined)
    return failure(StatusCode.UnknownAction, `Unknown action ${action} for agent ${agentName}`);
  try {
    return await run(data, ctx);
  } catch (err) {
    return failure(
      StatusCode.UnknownError,
      `${agentName}#${action} failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
