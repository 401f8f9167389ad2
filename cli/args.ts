// How a CLI command reads its arguments: lib/config's parser, flags only. Each command reads its few
// environment variables itself, because they sit between its flags and the local stack's defaults.
import {
  type OptionFlag,
  type OptionSpec,
  type OptionValues,
  type ReadOptions,
  readOptions,
} from "../lib/config/mod.ts";

interface Writer {
  write(text: string): unknown;
}

export type CommandArgs<O extends readonly OptionFlag[]> = Extract<ReadOptions<O>, { ok: true }>;

/**
 * The command's options and positionals; or, after `--help` (usage on stdout, exit code 0) or a mistake
 * (what is wrong and the usage on stderr, exit code 2), the exit code.
 */
export function commandArgs<const O extends readonly OptionFlag[]>(
  command: string,
  usage: string,
  options: O,
  argv: readonly string[],
  io: { stdout: Writer; stderr: Writer },
  how = { positionals: true },
): CommandArgs<O> | number {
  const read = readOptions(options, "", argv, {}, how);
  if (read.ok) return read;
  if ("help" in read) {
    io.stdout.write(`${usage}\n`);
    return 0;
  }
  io.stderr.write(`choria-edge ${command}: ${read.error}\n\n${usage}\n`);
  return 2;
}

/**
 * The same for the commands that run a service (stack, simulate, keys): a mistake is thrown, and main
 * reports it with exit code 1, as these commands always have.
 */
export function serviceArgs<const O extends readonly OptionFlag[]>(
  usage: string,
  options: O,
  argv: readonly string[],
): OptionValues<O> | undefined {
  const read = readOptions(options, "", argv, {});
  if (read.ok) return read.values;
  if ("error" in read) throw new Error(read.error);
  console.log(usage);
  return undefined;
}

/**
 * A service (gateway, broker, collector) as a command: `--help` and an option mistake answered from its
 * option list alone, as the service would answer them; otherwise the service, loaded now, which reads the
 * arguments again with its environment variables. Loading one costs several times Node's own start-up.
 */
export function serviceCommand(
  command: string,
  usage: () => string,
  options: readonly OptionSpec[],
  load: () => Promise<(argv: string[]) => Promise<number>>,
): (argv: string[]) => Promise<number> {
  return async (argv) => {
    const args = commandArgs(command, usage(), options, argv, process, { positionals: false });
    return typeof args === "number" ? args : (await load())(argv);
  };
}
