// The Node-only surface of lib/node: the native byte work a Node process hands its NodeHost.
import { Buffer } from "node:buffer";
import { replyDigest } from "../client/node.ts";
import type { HostCodec } from "./responder.ts";

export const nodeCodec: HostCodec = {
  digest: replyDigest,
  sameBytes: (a, b) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(b),
  transportData: (secureJson) => Buffer.from(secureJson, "utf8").toString("base64"),
};
