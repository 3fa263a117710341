import { describe, expect, it } from 'vitest';
import type { Patient } from 'fhir/r4.js';
import { ChangeFeed } from '../../src/capture/change-feed.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { useTestDb } from '../support/test-db.js';

/**
 * Batches a consumer skips move its position in memory; the position is persisted by the next batch it
 * handles, when someone waits for it to be idle, at stop, or every skippedPersistMs — not once per
 * skipped batch.
 */
const testDb = useTestDb();

const patient = (family: string): Patient => ({ resourceType: 'Patient', name: [{ family }] });
const observation = (text: string) => ({ resourceType: 'Observation', status: 'final', code: { text } }) as never;

/** A feed that persists skipped progress only when asked (idle, stop), a store waking it, and a skipping consumer. */
function setup(consumer: string) {
  const feed = new ChangeFeed(testDb.db, { pollIntervalMs: 50, skippedPersistMs: 3_600_000 });
  const store = ResourceStore.create(testDb.db, { clock: { now: () => new Date() }, afterCommit: () => feed.changed() });
  const handled: string[] = [];
  const skipped: number[] = [];
  /** Every change the consumer got, skipped or passed to the handler. */
  const seen: number[] = [];
  let waiters: { pred: () => boolean; resolve: () => void }[] = [];
  const check = () => (waiters = waiters.filter((w) => (w.pred() ? (w.resolve(), false) : true)));
  /** Resolves once `pred` holds, checked after every batch the consumer handles or skips. */
  const until = (pred: () => boolean) => (pred() ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ pred, resolve })));
  const sub = feed.consume(
    consumer,
    async (changes) => {
      for (const c of changes) if (c.resourceType === 'Observation') handled.push(c.id);
      seen.push(...changes.map((c) => c.seq));
    },
    {
      // After the commit that advanced the position with the batch.
      afterCommit: check,
      skippable: async (changes) => {
        if (changes.some((c) => c.resourceType === 'Observation')) return false;
        for (const c of changes) skipped.push(c.seq);
        seen.push(...changes.map((c) => c.seq));
        check();
        return true;
      },
    },
  );
  const skippedSeq = (seq: number) => until(() => skipped.includes(seq));
  return { feed, store, sub, handled, skipped, seen, skippedSeq, until };
}

const seqOf = async (id: string): Promise<number> => Number((await testDb.db.query<{ seq: number }>('SELECT max(seq) AS seq FROM resource_history WHERE id = $1', [id])).rows[0].seq);

describe('skipped batches', () => {
  it('do not write the position each; idle() persists it', async () => {
    const { feed, store, sub, skippedSeq } = setup('skip-memory');
    await sub.idle(); // the first batch learns the position under lock
    const start = await feed.position('skip-memory');
    let last = 0;
    for (let i = 0; i < 5; i++) last = await seqOf((await store.create(patient(`mem${i}`))).resource.id!);
    await skippedSeq(last);
    expect(await feed.position('skip-memory')).toBe(start);
    await sub.idle();
    expect(await feed.position('skip-memory')).toBe(last);
    await sub.stop();
    await feed.close();
  });

  it('are persisted by the next batch handled, which reads on from where the skipping left off', async () => {
    const { feed, store, sub, handled, skippedSeq, until } = setup('skip-then-handle');
    await sub.idle();
    let last = 0;
    for (let i = 0; i < 3; i++) last = await seqOf((await store.create(patient(`then${i}`))).resource.id!);
    await skippedSeq(last);
    const { resource } = await store.create(observation('handled'));
    const seq = await seqOf(resource.id!);
    await until(() => handled.includes(resource.id!));
    // The handled batch's own advance (from the persisted position) carried the skipped ones with it.
    expect(await feed.position('skip-then-handle')).toBe(seq);
    expect(handled).toEqual([resource.id]);
    await sub.stop();
    await feed.close();
  });

  it('lost with the process are read again: a new consumer gets them once more, as the handler would have', async () => {
    const first = setup('skip-crash');
    await first.sub.idle();
    const persisted = await first.feed.position('skip-crash');
    let last = 0;
    for (let i = 0; i < 4; i++) last = await seqOf((await first.store.create(patient(`crash${i}`))).resource.id!);
    await first.skippedSeq(last);
    // As after a crash: a new process's consumer starts from the persisted position, which never moved.
    expect(await first.feed.position('skip-crash')).toBe(persisted);
    const second = setup('skip-crash');
    await second.sub.idle();
    // Its first batch runs the locked way (through the handler, which ignores Patients), later ones may be skipped.
    const range = (xs: number[]) => xs.filter((seq) => seq > persisted && seq <= last);
    expect(range(second.seen)).toEqual(range(first.skipped));
    expect(second.handled).toEqual([]);
    expect(await second.feed.position('skip-crash')).toBeGreaterThanOrEqual(last);
    await Promise.all([first.sub.stop(), second.sub.stop()]);
    await Promise.all([first.feed.close(), second.feed.close()]);
  });

  it('are persisted at stop', async () => {
    const { feed, store, sub, skippedSeq } = setup('skip-stop');
    await sub.idle();
    const last = await seqOf((await store.create(patient('stop'))).resource.id!);
    await skippedSeq(last);
    await sub.stop();
    expect(await feed.position('skip-stop')).toBe(last);
    await feed.close();
  });
});
