// lib/triggers for the Node side: the YAML trigger file parser, kept out of mod.ts so that the Worker,
// which takes the file as JSON, carries no YAML parser.
export { parseTriggerFile, triggerFileJson } from "./yaml.ts";
