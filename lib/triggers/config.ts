// The trigger file's data, checked with zod, then compiled into triggers whose regular expressions, paths
// and templates are ready to use. The text is parsed elsewhere: YAML (yaml.ts, where every error names a
// line and a column, because a file that fails at start-up must be easy to fix) or JSON (here, for the
// Worker, which takes the file compiled to JSON so that it carries no YAML parser).
import * as z from "zod/mini";
import { rpcRequestBodySchema } from "../api/mod.ts";
import { compileRe2, MAX_REGEX_LENGTH, type Re2Regex } from "../protocol/mod.ts";
import { type CallbackTarget, callbackTargetSchema, JOB_STATES } from "../results/jobs/mod.ts";
import { type Policy, policySchema } from "../security/http/mod.ts";
import type { Condition, ConditionScalar } from "./conditions.ts";
import { checkInputValue, INPUT_TYPES, type InputSource, type InputSpec, type InputValue } from "./inputs.ts";
import { type DataPath, formatPath, type Location, parsePath } from "./paths.ts";
import { parseTemplate, stringsIn, templateInputs } from "./template.ts";

const VERIFY_SCHEMES = ["github", "standard-webhooks", "slack", "stripe", "rfc9421"] as const;
type VerifyScheme = (typeof VERIFY_SCHEMES)[number];

const FINAL_JOB_STATES = JOB_STATES.filter((state) => state !== "running");

const TRIGGER_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const INPUT_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const KEY_ID = /^[A-Za-z0-9_.-]{1,128}$/;
const CALLER_ID = /^[a-z]+=[\w.-]+$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const DATA_KEY = /^[A-Za-z0-9_=./-]{1,256}$/;
const DEFAULT_LOCK_TIMEOUT_SECONDS = 5;

/**
 * Compiles as the triggers will use it: RE2 (Go's syntax, as Choria's own tools use it; no backreferences
 * or lookaround) on a linear-time engine, so no payload can make a condition or input check run long.
 */
function compileRegex(source: string): Re2Regex | string {
  const compiled = compileRe2(source);
  return compiled.ok ? compiled.regex : compiled.reason;
}

const regexSource = z.string().check(
  z.minLength(1),
  z.maxLength(MAX_REGEX_LENGTH),
  z.superRefine((source, ctx) => {
    const compiled = compileRegex(source);
    if (typeof compiled === "string")
      ctx.addIssue({ code: "custom", message: `not a valid regular expression (${compiled})` });
  }),
);

const payloadPath = z
  .string()
  .check(z.refine((text) => parsePath(text) !== undefined, "not a payload path: write field.field[0].field"));

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

interface ConditionConfig {
  header?: string;
  path?: string;
  equals?: ConditionScalar;
  matches?: string;
  in?: ConditionScalar[];
  exists?: boolean;
  not?: ConditionConfig;
}

const SUBJECTS = ["header", "path"] as const;
const OPERATORS = ["equals", "matches", "in", "exists"] as const;

const conditionSchema: z.ZodMiniType<ConditionConfig> = z.lazy(() =>
  z
    .strictObject({
      header: z.optional(z.string().check(z.regex(HEADER_NAME, "not a header name"))),
      path: z.optional(payloadPath),
      equals: z.optional(scalar),
      matches: z.optional(regexSource),
      in: z.optional(z.array(scalar).check(z.minLength(1))),
      exists: z.optional(z.boolean()),
      not: z.optional(conditionSchema),
    })
    .check(
      z.superRefine((condition, ctx) => {
        const present = (key: keyof ConditionConfig) => condition[key] !== undefined;
        if (present("not")) {
          const extra = [...SUBJECTS, ...OPERATORS].filter(present);
          if (extra.length > 0)
            ctx.addIssue({
              code: "custom",
              message: `"not" stands alone: move ${extra.join(", ")} inside it`,
            });
          return;
        }
        const subjects = SUBJECTS.filter(present);
        const operators = OPERATORS.filter(present);
        if (subjects.length !== 1)
          ctx.addIssue({
            code: "custom",
            message: "a condition names exactly one of header or path (or is a not)",
          });
        if (operators.length !== 1)
          ctx.addIssue({
            code: "custom",
            message: "a condition has exactly one of equals, matches, in or exists",
          });
      }),
    ),
);

const inputSchema = z
  .strictObject({
    from: z.string().check(
      z.superRefine((from, ctx) => {
        const source = inputSource(from);
        if ("error" in source) ctx.addIssue({ code: "custom", message: source.error });
      }),
    ),
    type: z._default(z.enum(INPUT_TYPES), "string"),
    default: z.optional(z.union([z.string(), z.number(), z.boolean()])),
    pattern: z.optional(regexSource),
    enum: z.optional(z.array(z.union([z.string(), z.number(), z.boolean()])).check(z.minLength(1))),
    min_length: z.optional(z.number().check(z.int(), z.gte(0))),
    max_length: z.optional(z.number().check(z.int(), z.gte(0))),
    minimum: z.optional(z.number()),
    maximum: z.optional(z.number()),
    shellsafe: z._default(z.boolean(), false),
  })
  .check(
    z.superRefine((input, ctx) => {
      const stringOnly = (["pattern", "min_length", "max_length", "shellsafe"] as const).filter(
        (key) => input[key] !== undefined && input[key] !== false,
      );
      if (input.type !== "string")
        for (const key of stringOnly)
          ctx.addIssue({
            code: "custom",
            path: [key],
            message: `${key} applies to strings, not ${input.type}`,
          });
      if (input.type !== "integer" && input.type !== "number")
        for (const key of ["minimum", "maximum"] as const)
          if (input[key] !== undefined)
            ctx.addIssue({
              code: "custom",
              path: [key],
              message: `${key} applies to numbers, not ${input.type}`,
            });
      if (
        input.min_length !== undefined &&
        input.max_length !== undefined &&
        input.min_length > input.max_length
      )
        ctx.addIssue({ code: "custom", path: ["max_length"], message: "max_length is below min_length" });
      if (input.minimum !== undefined && input.maximum !== undefined && input.minimum > input.maximum)
        ctx.addIssue({ code: "custom", path: ["maximum"], message: "maximum is below minimum" });
      (input.enum ?? []).forEach((option, index) => {
        if (!hasType(option, input.type))
          ctx.addIssue({ code: "custom", path: ["enum", index], message: `expected a ${input.type}` });
      });
      if (input.default === undefined) return;
      if (!hasType(input.default, input.type)) {
        ctx.addIssue({ code: "custom", path: ["default"], message: `expected a ${input.type}` });
        return;
      }
      const source = inputSource(input.from);
      if ("error" in source) return;
      const checked = checkInputValue(compileInput("default", input, source), input.default);
      if (!checked.ok) ctx.addIssue({ code: "custom", path: ["default"], message: checked.detail });
    }),
  );

type InputConfig = z.output<typeof inputSchema>;

function hasType(value: InputValue, type: (typeof INPUT_TYPES)[number]): boolean {
  if (type === "integer") return typeof value === "number" && Number.isSafeInteger(value);
  return typeof value === type;
}

function inputSource(from: string): InputSource | { error: string } {
  const dot = from.indexOf(".");
  const kind = from.slice(0, dot);
  const rest = from.slice(dot + 1);
  if (dot > 0 && kind === "payload") {
    const segments = parsePath(rest);
    if (segments) return { kind, path: rest, segments };
    return { error: "not a payload path: write payload.field.field[0].field" };
  }
  if (dot > 0 && kind === "header") {
    if (HEADER_NAME.test(rest)) return { kind, name: rest.toLowerCase() };
    return { error: "not a header name" };
  }
  if (dot > 0 && kind === "data") {
    if (DATA_KEY.test(rest)) return { kind, key: rest };
    return { error: "a data key is 1-256 letters, digits, '_', '=', '.', '/' or '-'" };
  }
  return { error: "an input comes from payload.<path>, header.<name> or data.<key>" };
}

// A trigger's request is the /v1/rpc body with `${inputs.NAME}` placeholders, so its fields are the body's
// own, less mode and callback (a run is always async, and its callback is the trigger's). A value without
// a placeholder is checked as the body checks it; one with a placeholder only once rendered, by the gateway.
const requestSchema = z.strictObject(
  Object.fromEntries(
    Object.entries(rpcRequestBodySchema.shape)
      .filter(([key]) => key !== "mode" && key !== "callback")
      .map(([key, field]) => {
        const value = z.unknown().check(z.superRefine((raw, ctx) => checkRequestValue(field, raw, ctx)));
        return [key, field.safeParse(undefined).success ? z.optional(value) : value];
      }),
  ),
);

function checkRequestValue(field: z.ZodMiniType, value: unknown, ctx: z.core.$RefinementCtx): void {
  if (value === undefined) {
    ctx.addIssue({ code: "custom", message: "required" });
    return;
  }
  if (JSON.stringify(value).includes("${")) return;
  const checked = field.safeParse(value);
  for (const issue of checked.error?.issues ?? [])
    ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
}

const dataActionSchema = z
  .strictObject({
    put: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
    delete: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
    value: z.optional(z.string().check(z.maxLength(65_536))),
    when_state: z.optional(z.array(z.enum(FINAL_JOB_STATES)).check(z.minLength(1))),
  })
  .check(
    z.superRefine((action, ctx) => {
      if ((action.put === undefined) === (action.delete === undefined))
        ctx.addIssue({ code: "custom", message: "an on_complete entry has exactly one of put or delete" });
      if (action.put !== undefined && action.value === undefined)
        ctx.addIssue({ code: "custom", message: "put needs a value" });
      if (action.delete !== undefined && action.value !== undefined)
        ctx.addIssue({ code: "custom", path: ["value"], message: "delete takes no value" });
    }),
  );

const verifySchema = z
  .strictObject({
    scheme: z.enum(VERIFY_SCHEMES),
    secrets_env: z._default(
      z.array(z.string().check(z.regex(ENV_NAME, "not an environment variable name"))),
      [],
    ),
    public_keys_env: z._default(
      z.array(z.string().check(z.regex(ENV_NAME, "not an environment variable name"))),
      [],
    ),
    keys: z._default(
      z.array(z.string().check(z.regex(KEY_ID, "a key id is 1-128 letters, digits, '_', '.' or '-'"))),
      [],
    ),
  })
  .check(
    z.superRefine((verify, ctx) => {
      const refuse = (field: string, message: string) =>
        ctx.addIssue({ code: "custom", path: [field], message });
      if (verify.scheme === "rfc9421") {
        if (verify.keys.length === 0) refuse("keys", "rfc9421 needs the key ids allowed to call");
        if (verify.secrets_env.length > 0) refuse("secrets_env", "rfc9421 takes keys from the key registry");
        if (verify.public_keys_env.length > 0)
          refuse("public_keys_env", "rfc9421 takes keys from the key registry");
        return;
      }
      if (verify.keys.length > 0) refuse("keys", "keys are for rfc9421 only");
      if (verify.scheme === "standard-webhooks") {
        if (verify.secrets_env.length === 0 && verify.public_keys_env.length === 0)
          ctx.addIssue({ code: "custom", message: "standard-webhooks needs secrets_env or public_keys_env" });
        return;
      }
      if (verify.secrets_env.length === 0) refuse("secrets_env", `${verify.scheme} needs secrets_env`);
      if (verify.public_keys_env.length > 0)
        refuse("public_keys_env", "public keys are for standard-webhooks (v1a) only");
    }),
  );

const triggerSchema = z
  .strictObject({
    name: z.string().check(z.regex(TRIGGER_NAME, "a trigger name is 1-64 letters, digits, '_' or '-'")),
    verify: verifySchema,
    caller: z.optional(z.string().check(z.minLength(1), z.maxLength(128))),
    callerid: z.optional(
      z.string().check(z.regex(CALLER_ID, "a caller id is type=name, e.g. choria=github.mcollective")),
    ),
    policy: policySchema,
    when: z._default(z.array(conditionSchema), []),
    inputs: z._default(
      z.record(
        z.string().check(z.regex(INPUT_NAME, "an input name is 1-64 letters, digits, '_' or '-'")),
        inputSchema,
      ),
      {},
    ),
    request: requestSchema,
    locks: z.optional(z.array(z.string().check(z.minLength(1), z.maxLength(256)))),
    lock_timeout: z._default(z.number().check(z.positive(), z.lte(3600)), DEFAULT_LOCK_TIMEOUT_SECONDS),
    respond: z.optional(
      z.strictObject({
        status: z.number().check(z.int(), z.gte(200), z.lte(299)),
        body: z.optional(z.unknown()),
      }),
    ),
    on_complete: z._default(z.array(dataActionSchema), []),
    callback: z.optional(callbackTargetSchema),
  })
  .check(
    z.superRefine((trigger, ctx) => {
      const declared = Object.keys(trigger.inputs);
      const checkText = (path: (string | number)[], text: string) => {
        const parsed = parseTemplate(text);
        if (!parsed.ok) {
          ctx.addIssue({ code: "custom", path, message: parsed.error });
          return;
        }
        for (const name of templateInputs(parsed.parts))
          if (!declared.includes(name))
            ctx.addIssue({
              code: "custom",
              path,
              message: `unknown input "${name}" in \${inputs.${name}}; declared: ${declared.join(", ") || "none"}`,
            });
      };
      for (const { path, text } of stringsIn(trigger.request, ["request"])) checkText(path, text);
      for (const [index, lock] of (trigger.locks ?? []).entries()) checkText(["locks", index], lock);
      trigger.on_complete.forEach((action, index) => {
        if (action.put !== undefined) checkText(["on_complete", index, "put"], action.put);
        if (action.delete !== undefined) checkText(["on_complete", index, "delete"], action.delete);
        if (action.value !== undefined) checkText(["on_complete", index, "value"], action.value);
      });
    }),
  );

const triggerFileSchema = z.strictObject({ triggers: z.array(triggerSchema) });

type TriggerConfig = z.output<typeof triggerSchema>;

/** A data-store write when a job ends; on a Trigger, key and value may still hold placeholders. */
export type DataAction =
  | { op: "put"; key: string; value: string; whenState?: string[] }
  | { op: "delete"; key: string; whenState?: string[] };

export interface Trigger {
  name: string;
  verify: { scheme: VerifyScheme; secretsEnv: string[]; publicKeysEnv: string[]; keys: string[] };
  /** Who runs are recorded as; default `hook:<name>`. */
  caller: string;
  /** Default `choria=hook-<name>.mcollective`. */
  callerId: string;
  policy: Policy;
  /** All must hold, else the delivery is skipped. */
  conditions: Condition[];
  inputs: InputSpec[];
  /** The /v1/rpc body with `${inputs.NAME}` placeholders; evaluateTrigger renders it. */
  request: Record<string, unknown>;
  /** Lock names, may hold placeholders; empty means no lock. */
  locks: string[];
  lockTimeoutMs: number;
  respond?: { status: number; body: unknown };
  /** Where the run's job reports its end (a URL signed with Standard Webhooks, or a Lambda function). */
  callback?: CallbackTarget;
  /** Data-store writes when the job ends, with placeholders. */
  onComplete: DataAction[];
}

export interface TriggerSet {
  get(name: string): Trigger | undefined;
  names(): string[];
  /** Every trigger, in file order. */
  all(): Trigger[];
}

export interface TriggerConfigError {
  line: number;
  column: number;
  /** The field, e.g. `triggers[0].inputs.branch.pattern`; empty for a syntax error. */
  path: string;
  message: string;
}

export type TriggerFileResult =
  | { ok: true; triggers: TriggerSet }
  | { ok: false; errors: TriggerConfigError[]; message: string };

function compileInput(name: string, input: InputConfig, source: InputSource): InputSpec {
  const pattern = input.pattern === undefined ? undefined : compileRegex(input.pattern);
  return {
    name,
    from: input.from,
    source,
    type: input.type,
    ...(input.default !== undefined && { default: input.default }),
    ...(typeof pattern === "object" && { pattern }),
    ...(input.enum && { enum: input.enum }),
    ...(input.min_length !== undefined && { minLength: input.min_length }),
    ...(input.max_length !== undefined && { maxLength: input.max_length }),
    ...(input.minimum !== undefined && { minimum: input.minimum }),
    ...(input.maximum !== undefined && { maximum: input.maximum }),
    shellsafe: input.shellsafe,
  };
}

function compileCondition(config: ConditionConfig): Condition {
  if (config.not) return { kind: "not", condition: compileCondition(config.not) };
  const subject =
    config.header !== undefined
      ? { kind: "header" as const, name: config.header.toLowerCase() }
      : { kind: "path" as const, path: config.path ?? "", segments: parsePath(config.path ?? "") ?? [] };
  if (config.equals !== undefined)
    return { kind: "test", subject, test: { op: "equals", value: config.equals } };
  if (config.in !== undefined) return { kind: "test", subject, test: { op: "in", values: config.in } };
  if (config.exists !== undefined)
    return { kind: "test", subject, test: { op: "exists", value: config.exists } };
  return {
    kind: "test",
    subject,
    test: { op: "matches", regex: compileRegex(config.matches ?? "") as Re2Regex },
  };
}

function compileTrigger(config: TriggerConfig): Trigger {
  const whenState = (states: string[] | undefined) => (states ? { whenState: states } : {});
  return {
    name: config.name,
    verify: {
      scheme: config.verify.scheme,
      secretsEnv: config.verify.secrets_env,
      publicKeysEnv: config.verify.public_keys_env,
      keys: config.verify.keys,
    },
    caller: config.caller ?? `hook:${config.name}`,
    callerId: config.callerid ?? `choria=hook-${config.name}.mcollective`,
    policy: config.policy,
    conditions: config.when.map(compileCondition),
    inputs: Object.entries(config.inputs).map(([name, input]) =>
      compileInput(name, input, inputSource(input.from) as InputSource),
    ),
    request: config.request,
    locks: config.locks ?? [config.name],
    lockTimeoutMs: Math.round(config.lock_timeout * 1000),
    ...(config.respond && { respond: { status: config.respond.status, body: config.respond.body } }),
    ...(config.callback && { callback: config.callback }),
    onComplete: config.on_complete.map((action) =>
      action.put !== undefined
        ? { op: "put", key: action.put, value: action.value ?? "", ...whenState(action.when_state) }
        : { op: "delete", key: action.delete ?? "", ...whenState(action.when_state) },
    ),
  };
}

class CompiledTriggers implements TriggerSet {
  readonly #byName: Map<string, Trigger>;
  constructor(triggers: Trigger[]) {
    this.#byName = new Map(triggers.map((trigger) => [trigger.name, trigger]));
  }
  get(name: string): Trigger | undefined {
    return this.#byName.get(name);
  }
  names(): string[] {
    return [...this.#byName.keys()];
  }
  all(): Trigger[] {
    return [...this.#byName.values()];
  }
}

interface RawError {
  path: DataPath;
  message: string;
  /** Point at the map key rather than its value (unknown fields). */
  atKey?: boolean;
}

function issueErrors(issue: z.core.$ZodIssue): RawError[] {
  if (issue.code === "unrecognized_keys")
    return issue.keys.map((key) => ({ path: [...issue.path, key], message: "unknown field", atKey: true }));
  if (issue.code === "invalid_key")
    return [{ path: issue.path, message: issue.issues[0]?.message ?? issue.message, atKey: true }];
  const message = issue.message.replace(/^Invalid input: /, "");
  return [{ path: issue.path, message: message.endsWith("received undefined") ? "required" : message }];
}

/** Duplicate names are checked on the raw data so that they show even when another field is wrong. */
function duplicateNameErrors(data: unknown): RawError[] {
  const triggers = (data as { triggers?: unknown } | null)?.triggers;
  if (!Array.isArray(triggers)) return [];
  const firstIndex = new Map<string, number>();
  const errors: RawError[] = [];
  triggers.forEach((trigger, index) => {
    const name = (trigger as { name?: unknown } | null)?.name;
    if (typeof name !== "string") return;
    const first = firstIndex.get(name);
    if (first === undefined) firstIndex.set(name, index);
    else
      errors.push({
        path: ["triggers", index, "name"],
        message: `"${name}" is already the name of triggers[${first}]`,
      });
  });
  return errors;
}

/** Parses trigger file text into triggers, or errors located in that text. */
export type TriggerParser = (text: string, options?: { filename?: string }) => TriggerFileResult;

/** Sorts errors by position and words them as `file:line:column path: message`. */
export function triggerFileErrors(filename: string, errors: TriggerConfigError[]): TriggerFileResult {
  errors.sort((a, b) => a.line - b.line || a.column - b.column);
  const message = errors
    .map(
      (error) =>
        `${filename}:${error.line}:${error.column}${error.path ? ` ${error.path}` : ""}: ${error.message}`,
    )
    .join("\n");
  return { ok: false, errors, message };
}

/**
 * Checks and compiles parsed trigger file data. `locate` maps a field path (and whether its key, not its
 * value, is meant) back to the text.
 */
export function compileTriggerData(
  data: unknown,
  filename: string,
  locate: (path: DataPath, atKey: boolean) => Location,
): TriggerFileResult {
  const parsed = triggerFileSchema.safeParse(data);
  const raw = [
    ...(parsed.success ? [] : parsed.error.issues.flatMap(issueErrors)),
    ...duplicateNameErrors(data),
  ];
  if (raw.length > 0 || !parsed.success)
    return triggerFileErrors(
      filename,
      raw.map(({ path, message, atKey }) => ({
        ...locate(path, atKey ?? false),
        path: formatPath(path),
        message,
      })),
    );
  return { ok: true, triggers: new CompiledTriggers(parsed.data.triggers.map(compileTrigger)) };
}

/**
 * The trigger file as JSON, as the Worker takes it (`choria-edge hook compile` writes it from YAML). JSON
 * keeps no positions worth reporting, so every error is at 1:1 and its field path says where.
 */
export const parseTriggerJson: TriggerParser = (text, options = {}) => {
  const filename = options.filename ?? "triggers";
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return triggerFileErrors(filename, [
      { line: 1, column: 1, path: "", message: `not JSON: ${(error as Error).message}` },
    ]);
  }
  return compileTriggerData(data, filename, () => ({ line: 1, column: 1 }));
};

/** The secrets a trigger's verifier needs, read from the environment once, at start-up. */
export function triggerSecrets(
  trigger: Trigger,
  env: Record<string, string | undefined>,
): { ok: true; secrets: string[]; publicKeys: string[] } | { ok: false; missing: string[] } {
  const present = (name: string) => env[name] !== undefined && env[name] !== "";
  const missing = [...trigger.verify.secretsEnv, ...trigger.verify.publicKeysEnv].filter(
    (name) => !present(name),
  );
  if (missing.length > 0) return { ok: false, missing };
  return {
    ok: true,
    secrets: trigger.verify.secretsEnv.map((name) => env[name] as string),
    publicKeys: trigger.verify.publicKeysEnv.map((name) => env[name] as string),
  };
}
