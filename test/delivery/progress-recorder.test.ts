import { describe, expect, it } from 'vitest';
import { ProgressRecorder, type Recorded } from '../../src/delivery/progress-recorder.js';

/** A progress store the test completes by hand: each write waits until the test answers it. */
function manualStore() {
  const writes: { through: number; answer: (r: Recorded | undefined) => void; fail: (e: Error) => void }[] = [];
  const write = (through: number) => new Promise<Recorded | undefined>((resolve, reject) => writes.push({ through, answer: resolve, fail: reject }));
  return { writes, write };
}

describe('ProgressRecorder', () => {
  it('keeps one update in flight and folds what is delivered meanwhile into the next', async () => {
    const store = manualStore();
    const seen: Recorded[] = [];
    const progress = new ProgressRecorder(0, store.write, (r) => seen.push(r));
    progress.delivered(1);
    progress.delivered(2);
    progress.delivered(3);
    expect(store.writes.map((w) => w.through)).toEqual([1]);
    store.writes[0].answer({ eventsSinceStart: 5, leaseUntil: 1000 });
    const settled = progress.settle();
    await Promise.resolve();
    await Promise.resolve();
    expect(store.writes.map((w) => w.through)).toEqual([1, 3]);
    store.writes[1].answer({ eventsSinceStart: 6, leaseUntil: 2000 });
    expect(await settled).toBe(true);
    expect(seen).toEqual([{ eventsSinceStart: 5, leaseUntil: 1000 }, { eventsSinceStart: 6, leaseUntil: 2000 }]);
    progress.delivered(3); // nothing new: no write
    expect(store.writes).toHaveLength(2);
  });

  it('reports a lost lease and stops writing', async () => {
    const store = manualStore();
    const progress = new ProgressRecorder(10, store.write, () => undefined);
    progress.delivered(11);
    store.writes[0].answer(undefined);
    expect(await progress.settle()).toBe(false);
    expect(progress.leaseLost).toBe(true);
    progress.delivered(12);
    expect(store.writes).toHaveLength(1);
  });

  it('rethrows a database error on settle', async () => {
    const store = manualStore();
    const progress = new ProgressRecorder(0, store.write, () => undefined);
    progress.delivered(1);
    store.writes[0].fail(new Error('connection lost'));
    await expect(progress.settle()).rejects.toThrow('connection lost');
  });

  it('with a least interval, starts the next update no sooner unless settled, and then at once', async () => {
    const store = manualStore();
    const progress = new ProgressRecorder(0, store.write, () => undefined, { minIntervalMs: 50, now: () => 0 });
    progress.delivered(1);
    expect(store.writes.map((w) => w.through)).toEqual([1]);
    store.writes[0].answer({ eventsSinceStart: 1, leaseUntil: 1000 });
    await Promise.resolve();
    progress.delivered(2);
    await Promise.resolve();
    expect(store.writes).toHaveLength(1); // within the interval: waits
    const settled = progress.settle();
    expect(store.writes.map((w) => w.through)).toEqual([1, 2]); // settle does not wait for it
    store.writes[1].answer({ eventsSinceStart: 2, leaseUntil: 2000 });
    expect(await settled).toBe(true);
  });

  it('with a least interval, an update held back goes out once the interval has passed', async () => {
    const store = manualStore();
    const progress = new ProgressRecorder(0, store.write, () => undefined, { minIntervalMs: 20 });
    progress.delivered(1);
    store.writes[0].answer({ eventsSinceStart: 3, leaseUntil: 1000 });
    await Promise.resolve();
    progress.delivered(2);
    progress.delivered(3);
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (store.writes.length < 2) return;
        clearInterval(check);
        resolve();
      }, 5);
    });
    expect(store.writes.map((w) => w.through)).toEqual([1, 3]);
  });
});
