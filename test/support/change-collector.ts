import type { ChangeRecord } from '../../src/capture/change-feed.js';

/** Collects the change records a feed consumer is handed; `until` resolves when `pred` holds for them. */
export function changeCollector() {
  const seen: ChangeRecord[] = [];
  let waiters: { pred: () => boolean; resolve: () => void }[] = [];
  return {
    seen,
    push(records: ChangeRecord[]) {
      seen.push(...records);
      waiters = waiters.filter((w) => (w.pred() ? (w.resolve(), false) : true));
    },
    until(pred: () => boolean): Promise<void> {
      if (pred()) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ pred, resolve }));
    },
  };
}
