const MIN_DELAY_MS = 100;
const MAX_DELAY_MS = 5000;

/**
 * Delay before the next reconnect attempt, growing with the time spent disconnected: a restarting
 * nats-server is picked up within a fraction of a second, a long outage costs an attempt every few
 * seconds, and the ±20% jitter keeps a fleet of brokers from reconnecting in lockstep.
 */
export function reconnectDelay(disconnectedForMs: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_DELAY_MS, Math.max(MIN_DELAY_MS, disconnectedForMs / 2));
  return Math.round(base * (0.8 + 0.4 * random()));
}
