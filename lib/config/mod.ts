// The public surface of lib/config: import from here, not from the files behind it.
export { DEMO_PKI_MADE, FileProblem, type MissingFileHint, readNamedBytes, readNamedFile } from "./files.ts";
export {
  envName,
  LISTEN_PATTERN,
  listenAddress,
  type OptionFlag,
  type OptionSpec,
  type OptionValue,
  type OptionValues,
  optionsUsage,
  type ReadOptions,
  readOptions,
} from "./options.ts";
export { cliEntry, packageRoot, packageVersion } from "./package.ts";
export { pkiDir, stateDir } from "./paths.ts";
