// Files the commands read that someone has to make first (keys, certificates, secrets): a missing one
// is named with what it is for and what makes it, instead of a bare ENOENT.
import { readFile } from "node:fs/promises";

export interface MissingFileHint {
  /** What the file is, as the reader knows it: "client certificate (--cert)". */
  what: string;
  /** What creates it: "'choria-edge keys' or npm start creates it". */
  made?: string | undefined;
  /** The option that names another file instead. */
  instead?: string | undefined;
}

/** Why a file could not be read, in words that say what to do. */
export function describeFileError(path: string, err: unknown, hint: MissingFileHint): string {
  const code = (err as NodeJS.ErrnoException).code;
  const instead = hint.instead === undefined ? "" : `, or pass ${hint.instead} <file>`;
  if (code === "ENOENT")
    return `the ${hint.what} ${path} does not exist${hint.made === undefined ? "" : `: ${hint.made}`}${instead}`;
  if (code === "EACCES") return `the ${hint.what} ${path} is not readable by this user (permission denied)`;
  if (code === "EISDIR") return `the ${hint.what} ${path} is a folder, not a file${instead}`;
  return `cannot read the ${hint.what} ${path}: ${(err as Error).message}`;
}

export class FileProblem extends Error {}

export async function readNamedFile(path: string, hint: MissingFileHint): Promise<string> {
  return new TextDecoder().decode(await readNamedBytes(path, hint));
}

export async function readNamedBytes(path: string, hint: MissingFileHint): Promise<Uint8Array<ArrayBuffer>> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (err) {
    throw new FileProblem(describeFileError(path, err, hint));
  }
}

/** The demo PKI's files: made by `choria-edge keys`, and by the local stack on its first run. */
export const DEMO_PKI_MADE = "'choria-edge keys' creates the demo certificates (npm start does too)";
