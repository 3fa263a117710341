/**
 * Changes committed in this process are handed to its feed consumers (ChangeFeed.offer) instead of
 * being read back, as long as they continue the consumer's position without a gap.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Patient } from 'fhir/r4.js';
import { ChangeFeed } from '../../src/capture/change-feed.js';
import type { Db } from '../../src/store/db.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { changeCollector } from '../support/change-collector.js';
import { openTestDb } from '../support/test-db.js';

let db: Db;
let cleanup: () => Promise<void>;
/** Reads of the change feed (clarion_changes_with_horizon) made through `counted`. */
let reads = 0;
let counted: Db;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  counted = new Proxy(db, {
    get(target, key) {
      if (key === 'query') {
        return (sql: string, ...rest: unknown[]) => {
          if (sql.includes('clarion_changes_with_horizon')) reads++;
          return (target.query as (...a: unknown[]) => unknown)(sql, ...rest);
        };
      }
      const value = Reflect.get(target, key) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
});
afterAll(async () => {
  await cleanup();
});

const patient = (family: string): Patient => ({ resourceType: 'Patient', name: [{ family }] });

/**
 * A feed woken only by this store's commits (its safety-net poll never fires during a test, and it does
 * not listen: other test files' NOTIFYs on this database would wake it into reads), and a store that
 * offers its creates to it.
 */
function offeringSetup(): { feed: ChangeFeed; store: ResourceStore } {
  const feed = new ChangeFeed(counted, { pollIntervalMs: 60_000 });
  const store = ResourceStore.create(db, {
    clock: { now: () => new Date() },
    versionCommitted: (v) => feed.offer(v),
    afterCommit: () => feed.changed(),
  });
  return { feed, store };
}

describe('offered changes', () => {
  it('takes its own creates without reading them back, and they are the records a read gives', async () => {
    const { feed, store } = offeringSetup();
    const c = changeCollector();
    const sub = feed.consume('offered', async (changes) => c.push(changes), { contentTypes: () => new Set(['Patient']) });
    await sub.idle(); // the first batch learns the position under lock (a read)
    reads = 0;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await store.create(patient(`Offered${i}`))).resource.id!);
    await c.until(() => ids.every((id) => c.seen.some((r) => r.id === id)));
    expect(reads).toBe(0);
    await sub.stop();

    // A feed with nothing offered reads the same changes from the database.
    const reader = new ChangeFeed(db, { pollIntervalMs: 50 });
    await reader.start();
    const r = changeCollector();
    const readSub = reader.consume('reader', async (changes) => r.push(changes), { contentTypes: () => new Set(['Patient']) });
    await r.until(() => ids.every((id) => r.seen.some((x) => x.id === id)));
    expect(c.seen.filter((x) => ids.includes(x.id))).toEqual(r.seen.filter((x) => ids.includes(x.id)));
    expect(c.seen.find((x) => x.id === ids[0])?.content).toContain('Offered0');
    await readSub.stop();
    await reader.close();
    await feed.close();
  });

  it('without content for types the consumer did not ask content of, as a read', async () => {
    const { feed, store } = offeringSetup();
    const c = changeCollector();
    const sub = feed.consume('no-content', async (changes) => c.push(changes));
    await sub.idle();
    reads = 0;
    const { resource } = await store.create(patient('NoContent'));
    await c.until(() => c.seen.some((r) => r.id === resource.id));
    expect(reads).toBe(0);
    expect(c.seen.find((r) => r.id === resource.id)).not.toHaveProperty('content');
    await sub.stop();
    await feed.close();
  });

  it("reads at a gap (another writer's change between its own): every change once, in order", async () => {
    const { feed, store } = offeringSetup();
    // Another process's writes: committed, but never offered to this feed.
    const other = ResourceStore.create(db, { clock: { now: () => new Date() }, afterCommit: () => feed.changed() });
    const c = changeCollector();
    const sub = feed.consume('gap', async (changes) => c.push(changes));
    await sub.idle();
    reads = 0;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await (i % 3 === 1 ? other : store).create(patient(`Gap${i}`))).resource.id!);
    await c.until(() => ids.every((id) => c.seen.some((r) => r.id === id)));
    expect(reads).toBeGreaterThan(0);
    const mine = c.seen.filter((r) => ids.includes(r.id));
    expect(mine.map((r) => r.id)).toEqual(ids);
    const seqs = c.seen.map((r) => r.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    await sub.stop();
    await feed.close();
  });

  it('carries on past a rolled-back number', async () => {
    const { feed, store } = offeringSetup();
    const c = changeCollector();
    const sub = feed.consume('rolled-back', async (changes) => c.push(changes));
    await sub.idle();
    const before = (await store.create(patient('BeforeRollback'))).resource.id!;
    await store
      .transaction(async (s) => {
        await s.create(patient('RolledBack'));
        throw new Error('abort');
      })
      .catch(() => undefined);
    const after = (await store.create(patient('AfterRollback'))).resource.id!;
    await c.until(() => c.seen.some((r) => r.id === after));
    expect(c.seen.map((r) => r.id).filter((id) => id === before || id === after)).toEqual([before, after]);
    await sub.stop();
    await feed.close();
  });
});
