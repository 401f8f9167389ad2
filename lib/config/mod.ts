// The public surface of lib/config: import from here, not from the files behind it.
export { DEMO_PKI_MADE, FileProblem, type MissingFileHint, readNamedBytes, readNamedFile } from "./files.ts";
export {
  envName,
  type OptionSpec,
  type OptionValue,
  optionsUsage,
  readOptions,
} from "./options.ts";
export { pkiDir, stateDir } from "./paths.ts";
