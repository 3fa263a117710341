/**
 * The periodic event-log pruning task. Runs never overlap (the next run is scheduled when the
 * previous one ends), the timer is unref'd (it never keeps the process alive), and stop() waits for a
 * run in progress, so closing the database after it is safe. Several processes may each run it:
 * EventLog.pruneEvents lets one of them prune at a time.
 */
import type { EventLog, PruneResult, RetentionPolicy } from './event-log.js';

export interface RetentionTaskOptions {
  intervalMs: number;
  policy: RetentionPolicy;
  now?: () => Date;
  onPruned?: (result: PruneResult) => void;
  /** A failed run is reported and the task continues with the next interval. */
  onError?: (err: unknown) => void;
}

export interface RetentionTask {
  /** Prunes once now (after a run in progress); resolves with what it did. Rejects once stopped. */
  runNow(): Promise<PruneResult>;
  stop(): Promise<void>;
}

/** Bounds of the interval: at least 10 ms, at most what setTimeout can represent (~24.8 days). */
export const RETENTION_INTERVAL_BOUNDS = { min: 10, max: 2 ** 31 - 1 } as const;

export function startRetentionTask(log: EventLog, options: RetentionTaskOptions): RetentionTask {
  const { intervalMs } = options;
  if (!Number.isInteger(intervalMs) || intervalMs < RETENTION_INTERVAL_BOUNDS.min || intervalMs > RETENTION_INTERVAL_BOUNDS.max) {
    throw new RangeError(`retention interval must be an integer from ${RETENTION_INTERVAL_BOUNDS.min} to ${RETENTION_INTERVAL_BOUNDS.max} ms, got ${intervalMs}`);
  }
  const now = options.now ?? (() => new Date());
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // The run in progress (never rejects: failures go to the caller of run()).
  let running: Promise<void> | undefined;

  const prune = async (): Promise<PruneResult> => {
    const result = await log.pruneEvents(now(), options.policy);
    options.onPruned?.(result);
    return result;
  };

  const run = (): Promise<PruneResult> => {
    const p = (running ?? Promise.resolve()).then(prune);
    const settled = p.then(() => undefined, () => undefined);
    running = settled;
    void settled.then(() => {
      if (running === settled) running = undefined;
    });
    return p;
  };

  const tick = (delayMs: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      run()
        .catch((err: unknown) => options.onError?.(err))
        .finally(() => tick(intervalMs));
    }, delayMs);
    timer.unref();
  };
  // The first run is right away: a server that restarts often would otherwise never prune.
  tick(0);

  return {
    runNow: () => (stopped ? Promise.reject(new Error('the retention task is stopped')) : run()),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
