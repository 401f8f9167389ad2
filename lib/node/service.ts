import { type Logger, ThrottledLog } from "../log/mod.ts";
import type { MessageBus } from "../transport/mod.ts";
import type { DropReason, NodeHost, OutgoingReply } from "./responder.ts";

interface NodeServiceStats {
  received: number;
  replies: number;
  dropped: Partial<Record<DropReason, number>>;
  publishFailures: number;
}

export interface NodeService {
  readonly stats: NodeServiceStats;
  /** Resolves when every message received so far has been answered. */
  idle(): Promise<void>;
  /** Drains the subscriptions, finishing the work in hand. */
  stop(): Promise<void>;
}

/** Subscribes a node host to its subjects on a bus and publishes its replies. */
export function serveNodes(bus: MessageBus, host: NodeHost, log: Logger = () => {}): NodeService {
  const stats: NodeServiceStats = { received: 0, replies: 0, dropped: {}, publishFailures: 0 };
  const pending = new Set<Promise<void>>();
  // One line per drop reason and minute: a flood of bad packets must not become a flood of logs.
  const drops = new ThrottledLog(log, 60_000);

  const publish = (replies: readonly OutgoingReply[]) => {
    for (const reply of replies) {
      if (bus.publish(reply.subject, reply.body)) stats.replies++;
      else stats.publishFailures++;
    }
  };

  const onMessage = async (subject: string, data: Uint8Array) => {
    stats.received++;
    const result = await host.handle(subject, data, bus.connectedUrl(), publish);
    if (!result.ok) {
      stats.dropped[result.reason] = (stats.dropped[result.reason] ?? 0) + 1;
      drops.note(result.reason, "warn", "request dropped", {
        reason: result.reason,
        detail: result.detail,
        subject,
      });
      return;
    }
    publish(result.replies);
  };

  const subscriptions = host.subjects.map((subject) =>
    bus.subscribe(subject, (msg) => {
      const work = onMessage(msg.subject, msg.data).catch((err: unknown) => {
        log("error", "node host failed on a message", { subject: msg.subject, error: String(err) });
      });
      pending.add(work);
      void work.finally(() => pending.delete(work));
    }),
  );

  return {
    stats,
    idle: async () => {
      while (pending.size > 0) await Promise.all(pending);
    },
    stop: async () => {
      await Promise.all(subscriptions.map((sub) => sub.drain()));
      while (pending.size > 0) await Promise.all(pending);
      await bus.flush().catch(() => {});
    },
  };
}
