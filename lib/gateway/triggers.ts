// Webhook triggers as a gateway runs them: the trigger file (lib/triggers) plus each trigger's secrets from
// the environment, checked once at start-up so that a missing secret or an unknown key stops the gateway
// instead of failing the first delivery.
import type { KeyRegistry } from "../security/http/mod.ts";
import { isWebhookScheme, type WebhookSecrets, webhookSecretsProblems } from "../security/webhooks/mod.ts";
import type { LogFn } from "../transport/mod.ts";
import { type Trigger, type TriggerParser, type TriggerSet, triggerSecrets } from "../triggers/mod.ts";
import { bucketSettings, type DataStoreSource, kvDataStore } from "./buckets.ts";
import type { AsyncDeps } from "./deps.ts";
import { kvJobStore } from "./job-store.ts";
import type { NatsSource } from "./nats.ts";

export interface GatewayTriggers {
  set: TriggerSet;
  /** Verification material by trigger name; none for `rfc9421` triggers, which use the key registry. */
  secrets: ReadonlyMap<string, WebhookSecrets>;
}

export type TriggersResult = { ok: true; triggers: GatewayTriggers } | { ok: false; error: string };

/**
 * Parses the trigger file and resolves every secret it names. Errors name the file position or the
 * trigger and environment variable, never a secret's value.
 */
export function loadTriggers(
  text: string,
  options: {
    /** YAML with positions on Node (lib/triggers/node.ts), JSON in the Worker. */
    parse: TriggerParser;
    filename?: string;
    env: Record<string, string | undefined>;
    keys: KeyRegistry;
    /** What the gateway offers: triggers run as jobs, and locks and data need the data store. */
    jobs: boolean;
    data: boolean;
  },
): TriggersResult {
  const parsed = options.parse(text, options.filename === undefined ? {} : { filename: options.filename });
  if (!parsed.ok) return { ok: false, error: parsed.message };
  const problems: string[] = [];
  const secrets = new Map<string, WebhookSecrets>();
  const triggers = parsed.triggers.all();
  if (triggers.length > 0 && !options.jobs)
    problems.push("triggers answer with a job: turn jobs on (--jobs on, CHORIA_EDGE_GATEWAY_JOBS=on)");
  for (const trigger of triggers) {
    const name = trigger.name;
    const say = (problem: string) => problems.push(`trigger ${name}: ${problem}`);
    if (!options.data && needsData(trigger))
      say("its locks, data inputs or on_complete need the data store, which this gateway does not have");
    const scheme = trigger.verify.scheme;
    if (!isWebhookScheme(scheme)) {
      for (const keyId of trigger.verify.keys)
        if (options.keys.get(keyId) === undefined) say(`verify.keys: no key ${keyId} in the keys file`);
      continue;
    }
    const material = triggerSecrets(trigger, options.env);
    if (!material.ok) {
      say(`environment variables not set: ${material.missing.join(", ")}`);
      continue;
    }
    const resolved: WebhookSecrets = { secrets: material.secrets, publicKeys: material.publicKeys };
    for (const problem of webhookSecretsProblems(scheme, resolved)) say(problem);
    secrets.set(name, resolved);
  }
  if (problems.length > 0) return { ok: false, error: problems.join("\n") };
  return { ok: true, triggers: { set: parsed.triggers, secrets } };
}

function needsData(trigger: Trigger): boolean {
  return (
    trigger.locks.length > 0 ||
    trigger.onComplete.length > 0 ||
    trigger.inputs.some((input) => input.source.kind === "data")
  );
}

/**
 * The parts of a gateway that live in JetStream KV, as every runtime wires them: the jobs store, the data
 * store beside it, and the triggers that need both. Throws naming what is wrong with the trigger file.
 */
/** What a runtime's settings say about the KV-backed parts. */
export interface AsyncSettings {
  /** Async requests and /v1/jobs, stored in the collectors' KV bucket. */
  jobs?: boolean;
  /** The trigger file's text, and its name for error messages. */
  triggers?: { text: string; filename: string };
  dataBucket?: string;
  /** JetStream replicas of the buckets this gateway creates. */
  replicas?: number;
}

export function asyncParts(options: {
  nats: NatsSource;
  settings: AsyncSettings;
  env: Record<string, string | undefined>;
  keys: KeyRegistry;
  /** Reads the trigger file's text: YAML on Node, JSON in the Worker. */
  parseTriggers: TriggerParser;
  /** Told the replication each bucket got when it is opened. */
  log?: LogFn;
}): AsyncDeps & { data?: DataStoreSource } {
  const { settings } = options;
  const jobs = settings.jobs === true;
  if (!jobs && settings.triggers === undefined) return {};
  let triggers: GatewayTriggers | undefined;
  if (settings.triggers !== undefined) {
    const loaded = loadTriggers(settings.triggers.text, {
      parse: options.parseTriggers,
      filename: settings.triggers.filename,
      env: options.env,
      keys: options.keys,
      jobs,
      data: jobs,
    });
    if (!loaded.ok) throw new Error(`triggers:\n${loaded.error}`);
    triggers = loaded.triggers;
  }
  const buckets = bucketSettings({
    ...(settings.replicas === undefined ? {} : { replicas: settings.replicas }),
    ...(options.log === undefined ? {} : { log: options.log }),
  });
  return {
    jobs: kvJobStore(options.nats, buckets),
    data: kvDataStore(options.nats, {
      ...buckets,
      ...(settings.dataBucket === undefined ? {} : { bucket: settings.dataBucket }),
    }),
    ...(triggers === undefined ? {} : { triggers }),
  };
}
