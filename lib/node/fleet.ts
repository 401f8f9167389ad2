import * as z from "zod";
// Simulated identities: each has its own facts, classes and agents, derived deterministically from a seed
// so that a filter selects the same real subset in every run (tests can compute the expected set).

export interface NodeIdentity {
  identity: string;
  collective: string;
  facts: Record<string, unknown>;
  classes: string[];
  agents: string[];
}

export interface FleetOptions {
  count: number;
  collective?: string;
  seed?: number;
  /** Identity template; `{n}` is replaced by the zero-padded index, `{collective}` by the collective. */
  naming?: string;
  /** Index of the first node, so that several processes can host disjoint parts of one fleet. */
  offset?: number;
}

const ROLES = ["web", "db", "cache"] as const;
const COUNTRIES = ["de", "fr", "nl", "uk", "us"] as const;
const OS_RELEASES = ["11", "12", "13"] as const;

/** The agents every simulated node runs; `demo` is left off roles that would not have it in real life. */
function agentsFor(role: string): string[] {
  return role === "cache" ? ["rpcutil", "discovery"] : ["rpcutil", "discovery", "demo"];
}

/** Small, fast, seedable PRNG (mulberry32); deterministic across runtimes. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function generateFleet(options: FleetOptions): NodeIdentity[] {
  const collective = options.collective ?? "mcollective";
  const offset = options.offset ?? 0;
  const naming = options.naming ?? "node{n}.{collective}.example.net";
  const width = Math.max(4, String(offset + options.count - 1).length);
  const random = seededRandom(options.seed ?? 1);
  const fleet: NodeIdentity[] = [];
  for (let i = 0; i < offset + options.count; i++) {
    // Draw for skipped indexes too, so that node N has the same facts whatever the offset.
    const country = COUNTRIES[Math.floor(random() * COUNTRIES.length)]!;
    const release = OS_RELEASES[Math.floor(random() * OS_RELEASES.length)]!;
    const memoryGb = 2 ** (1 + Math.floor(random() * 6));
    if (i < offset) continue;
    const role = ROLES[i % ROLES.length]!;
    const identity = naming
      .replaceAll("{n}", String(i).padStart(width, "0"))
      .replaceAll("{collective}", collective);
    fleet.push({
      identity,
      collective,
      facts: {
        role,
        country,
        index: i,
        memory_gb: memoryGb,
        os: { family: "Debian", release },
        kernel: "Linux",
      },
      classes: [
        "base",
        `roles::${role}`,
        ...(role === "web" ? ["nginx"] : role === "db" ? ["postgresql"] : []),
      ],
      agents: agentsFor(role),
    });
  }
  return fleet;
}

const nodeIdentitySchema = z.object({
  identity: z.string().min(1).max(253),
  collective: z.string().min(1).default("mcollective"),
  facts: z.record(z.string(), z.unknown()).default({}),
  classes: z.array(z.string()).default([]),
  agents: z.array(z.string()).default(["rpcutil", "discovery"]),
});

const fleetFileSchema = z.array(nodeIdentitySchema).min(1);

/**
 * Reads a fleet description (a JSON array of {identity, collective?, facts?, classes?, agents?}), so that
 * a simulation can mirror a real fleet's inventory. Errors name the entry and field.
 */
export function parseFleet(json: string): { ok: true; fleet: NodeIdentity[] } | { ok: false; error: string } {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  const result = fleetFileSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    return { ok: false, error: `${issue.path.join(".") || "(top)"}: ${issue.message}` };
  }
  const identities = new Set<string>();
  for (const node of result.data) {
    const key = `${node.collective} ${node.identity}`;
    if (identities.has(key))
      return { ok: false, error: `duplicate identity ${node.identity} in ${node.collective}` };
    identities.add(key);
  }
  return { ok: true, fleet: result.data };
}
