const FIRST_DELAY_MS = 100;
/** An outage younger than this is likely a restart or a failover: retry at least every second. */
const YOUNG_OUTAGE_MS = 60_000;
const YOUNG_MAX_DELAY_MS = 1000;
/** Reached after five minutes of outage. */
const MAX_DELAY_MS = 5000;

/**
 * Delay before the next reconnect attempt, growing with the time spent disconnected: attempts start 100 ms
 * apart and are never more than a second apart during the first minute, so a restarted nats-server is
 * picked up within a second of listening again. A server that stays down is then tried less and less
 * often, up to every five seconds after five minutes. The jitter (60–100% of the delay) keeps a fleet of
 * clients from reconnecting in lockstep and never takes a delay past its cap.
 */
export function reconnectDelay(disconnectedForMs: number, random: () => number = Math.random): number {
  const cap =
    disconnectedForMs < YOUNG_OUTAGE_MS
      ? YOUNG_MAX_DELAY_MS
      : Math.min(MAX_DELAY_MS, YOUNG_MAX_DELAY_MS + (disconnectedForMs - YOUNG_OUTAGE_MS) / 60);
  const base = Math.min(cap, Math.max(FIRST_DELAY_MS, disconnectedForMs / 2));
  return Math.round(base * (0.6 + 0.4 * random()));
}
