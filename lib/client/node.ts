// The Node-only surface of lib/client: what a Node process hands openReplySync.
import { createHash } from "node:crypto";
import type { ReplyDigest } from "./replies.ts";

/** The SHA-256 of a reply message as its secure reply's `hash` holds it, from node:crypto at once. */
export const replyDigest: ReplyDigest = (text) => createHash("sha256").update(text, "utf8").digest("base64");
