// Maps a path into the parsed data (as zod reports it) back to the YAML node it came from, so that an
// error names the line and column of the offending value, or of the map that lacks a required field.
import { type Document, isAlias, isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml";
import type { DataPath, Location } from "./paths.ts";

function resolve(document: Document, node: unknown): Node | undefined {
  if (isAlias(node)) return resolve(document, node.resolve(document));
  return node as Node | undefined;
}

function keyText(key: unknown): string | undefined {
  return isScalar(key) ? String(key.value) : undefined;
}

function child(document: Document, node: Node | undefined, segment: PropertyKey, wantKey: boolean) {
  if (isMap(node)) {
    const pair = node.items.find((item) => keyText(item.key) === String(segment));
    if (!pair) return undefined;
    return resolve(document, wantKey ? pair.key : pair.value);
  }
  if (isSeq(node) && typeof segment === "number") return resolve(document, node.items[segment]);
  return undefined;
}

/**
 * The node at the path or, when the path goes missing (a required field), its deepest ancestor that exists.
 * `wantKey`: the last segment names a map key, and the key itself (not its value) is wanted.
 */
export function findNode(document: Document, path: DataPath, wantKey = false): Node | undefined {
  let node = resolve(document, document.contents);
  for (const [index, segment] of path.entries()) {
    const next = child(document, node, segment, wantKey && index === path.length - 1);
    if (next === undefined) return node;
    node = next;
  }
  return node;
}

export function locate(lineCounter: LineCounter, offset: number | undefined): Location {
  const position = lineCounter.linePos(offset ?? 0);
  return { line: position.line, column: position.col };
}

export function nodeLocation(lineCounter: LineCounter, node: Node | undefined): Location {
  return locate(lineCounter, node?.range?.[0]);
}
