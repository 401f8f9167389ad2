/**
 * Why the broker refused a packet. Stable codes: they are metric labels and log keys, so never rename one.
 * The broker never opens `data`, so every reason is about the outer transport packet.
 */
export const REFUSAL_REASONS = [
  /** Not JSON, not UTF-8, not an object, or a field of the wrong type. */
  "malformed",
  /** A later Choria transport version (v2) that this broker does not route. */
  "unsupported_protocol",
  /** Over the configured size limit. */
  "too_large",
  /** Objects and arrays nested deeper than 64 levels, refused on the bytes before anything walks them. */
  "too_deep",
  /** No `federation` header: only federated packets travel through a broker. */
  "not_federated",
  /** A request with no `federation.target`. */
  "no_targets",
  /** More targets than the configured limit in one packet. */
  "too_many_targets",
  /** A request with no `reply-to`, or a reply with no `federation.reply-to`. */
  "no_reply_to",
  /** A reply subject that is not `<collective>.reply.<hash>.<id>` (or over 512 characters or 64 tokens). */
  "bad_reply_to",
  /** A reply subject in a collective whose replies this cluster does not carry (`--reply-collectives`). */
  "reply_not_allowed",
  /** A reply-to or target in NATS's reserved `$` namespaces (`$JS.`, `$KV.`, `$SYS.`…). */
  "reserved_subject",
  /** A target that is malformed, a wildcard, or not a broadcast agent or node subject. */
  "bad_target",
  /** A well-formed target in a collective or subject this cluster may not reach. */
  "target_not_allowed",
  /** This broker already appears in the packet's seen-by hops. */
  "loop",
  /** More seen-by hops than the configured limit. */
  "too_many_hops",
  /** A request (it still names targets) arriving on the collective side. */
  "request_on_collective_side",
  /** A packet already rewritten by a broker (it carries `federation.reply-to`) arriving on the federation side. */
  "reply_on_federation_side",
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/**
 * Messages the broker accepted but could not deliver. Counted apart from refusals because they say
 * something about the broker's load or its connections, not about the packet.
 */
export const DROP_REASONS = [
  /** The side's in-flight limit was reached. */
  "overloaded",
  /** One publish the NATS client refused (disconnected past its buffer, closed, over max_payload). */
  "publish_failed",
  /** Routing threw: a bug, never a packet's fault; counted so that every message received is accounted for. */
  "internal_error",
] as const;

export type DropReason = (typeof DROP_REASONS)[number];
