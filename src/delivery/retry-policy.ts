/**
 * Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries from many
 * subscriptions to one recovering endpoint spread out instead of arriving together.
 */
export interface RetryPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  maxAttempts: number;
}

/** Delay before the next attempt after `attempts` consecutive failures (1 = first failure). */
export function retryDelayMs(attempts: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}
