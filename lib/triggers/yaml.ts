// The trigger file as YAML (JSON is YAML too), with every error at its line and column. Node-side only: the
// Worker takes the file compiled to JSON (config.ts parseTriggerJson) and so carries no YAML parser.
import { LineCounter, parseDocument } from "yaml";
import {
  compileTriggerData,
  type TriggerFileResult,
  type TriggerParser,
  triggerFileErrors,
} from "./config.ts";
import { findNode, locate, nodeLocation } from "./locate.ts";

// One syntax error tends to set off a cascade; the first few are the ones worth reading.
const MAX_SYNTAX_ERRORS = 5;

function readTriggerFile(text: string, filename: string): { data?: unknown; result: TriggerFileResult } {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0)
    return {
      result: triggerFileErrors(
        filename,
        document.errors.slice(0, MAX_SYNTAX_ERRORS).map((error) => ({
          ...locate(lineCounter, error.pos[0]),
          path: "",
          message: error.message,
        })),
      ),
    };
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { result: triggerFileErrors(filename, [{ line: 1, column: 1, path: "", message }]) };
  }
  const result = compileTriggerData(data, filename, (path, atKey) =>
    nodeLocation(lineCounter, findNode(document, path, atKey)),
  );
  return { data, result };
}

export const parseTriggerFile: TriggerParser = (text, options = {}) =>
  readTriggerFile(text, options.filename ?? "triggers").result;

/** The checked trigger file as one line of JSON, for the Worker (parseTriggerJson reads it). */
export function triggerFileJson(
  text: string,
  options: { filename?: string } = {},
): { ok: true; json: string } | { ok: false; message: string } {
  const { data, result } = readTriggerFile(text, options.filename ?? "triggers");
  return result.ok ? { ok: true, json: JSON.stringify(data) } : { ok: false, message: result.message };
}
