/**
 * The event-log repository on a real database (both backends): state and subscription lookups,
 * event ranges, retention bounds, version loading and pruning (count, age, contiguity, concurrency).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { EventLog, resourceKey } from '../../src/subscriptions/event-log.js';
import { createSubscription, eventSeries, insertEvents, upsertState } from '../support/subscription-seed.js';
import { openTestDb } from '../support/test-db.js';

let db: Db;
let cleanup: () => Promise<void>;
let store: ResourceStore;
let log: EventLog;
const focus = { type: 'Encounter', id: 'e1', version: 1 };

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  store = ResourceStore.create(db, { clock: { now: () => new Date() } });
  log = new EventLog(db);
});
afterAll(async () => cleanup());

async function reset(): Promise<void> {
  await db.query('DELETE FROM subscription_events');
  await db.query('DELETE FROM subscription_state');
}

describe('state and subscriptions', () => {
  beforeAll(async () => {
    await reset();
    await createSubscription(store, { id: 'a' });
    await createSubscription(store, { id: 'b', status: 'off' });
    await createSubscription(store, { id: 'c' });
    await createSubscription(store, { id: 'gone' });
    await store.delete('Subscription', 'gone');
    await upsertState(db, 'a', { status: 'active', eventsSinceStart: 7 });
    await upsertState(db, 'c', { status: 'error', eventsSinceStart: 2, errorCode: 'no-response', errorMessage: 'timed out' });
  });

  it('getState reads the agreed columns, by id or all, with a status filter', async () => {
    const all = await log.getState('all');
    expect(all.map((s) => s.subscriptionId)).toEqual(['a', 'c']);
    expect(all[1]).toMatchObject({ status: 'error', eventsSinceStart: 2, errorCode: 'no-response', errorMessage: 'timed out', channelType: 'rest-hook' });
    expect(all[1].errorAt).toBeInstanceOf(Date);
    expect((await log.getState(['a', 'x'])).map((s) => s.subscriptionId)).toEqual(['a']);
    expect((await log.getState('all', ['error', 'off'])).map((s) => s.subscriptionId)).toEqual(['c']);
    expect(await log.getState([])).toEqual([]);
  });

  it('findSubscriptions joins resources with state; deleted ones are left out; status is the effective one', async () => {
    const all = await log.findSubscriptions('all');
    expect(all.map((s) => [s.id, s.state?.status ?? null])).toEqual([['a', 'active'], ['b', null], ['c', 'error']]);
    expect(all[1].resource).toMatchObject({ resourceType: 'Subscription', status: 'off' });
    // b has no state row: its resource status counts.
    expect((await log.findSubscriptions('all', ['off', 'error'])).map((s) => s.id)).toEqual(['b', 'c']);
    expect((await log.findSubscriptions(['a', 'b'], ['active'])).map((s) => s.id)).toEqual(['a']);
    expect(await log.findSubscriptions(['gone'])).toEqual([]);
  });
});

describe('events', () => {
  beforeEach(reset);

  it('listEvents returns an inclusive range, oldest first, limited, with parsed context', async () => {
    await insertEvents(db, 's', eventSeries(1, 5, focus));
    await insertEvents(db, 's', [{ eventNumber: 6, focus, interaction: 'delete', additionalContext: [{ reference: 'Patient/p1', version: 2 }, { reference: 'Patient/p2' }] }]);
    await insertEvents(db, 'other', eventSeries(1, 3, focus));
    const got = await log.listEvents('s', 2, 6, 10);
    expect(got.map((e) => e.eventNumber)).toEqual([2, 3, 4, 5, 6]);
    expect(got[4]).toMatchObject({ subscriptionId: 's', interaction: 'delete', focus, additionalContext: [{ reference: 'Patient/p1', version: 2 }, { reference: 'Patient/p2' }] });
    expect(got[0].occurredAt).toBeInstanceOf(Date);
    expect((await log.listEvents('s', 2, 6, 2)).map((e) => e.eventNumber)).toEqual([2, 3]);
    expect(await log.listEvents('s', 4, 3, 10)).toEqual([]);
  });

  it('retentionBounds gives the oldest and newest retained numbers', async () => {
    expect(await log.retentionBounds('s')).toEqual({ oldestRetained: null, newestRetained: null });
    await insertEvents(db, 's', eventSeries(4, 3, focus));
    expect(await log.retentionBounds('s')).toEqual({ oldestRetained: 4, newestRetained: 6 });
  });

  it('loadResources reads versions from history and current versions; deletions are absent', async () => {
    const { resource } = await store.create({ resourceType: 'Encounter', status: 'planned', class: { code: 'AMB' } } as never);
    const id = resource.id as string;
    await store.update({ ...resource, status: 'finished' } as never);
    await store.delete('Encounter', id);
    const keys = [
      { type: 'Encounter', id, version: 1 },
      { type: 'Encounter', id, version: 2 },
      { type: 'Encounter', id, version: 3 },
      { type: 'Encounter', id },
      { type: 'Encounter', id: 'nope', version: 1 },
    ];
    const got = await log.loadResources(keys);
    expect(got.get(resourceKey(keys[0]))).toMatchObject({ status: 'planned', meta: { versionId: '1' } });
    expect(got.get(resourceKey(keys[1]))).toMatchObject({ status: 'finished', meta: { versionId: '2' } });
    expect([...got.keys()].sort()).toEqual([resourceKey(keys[0]), resourceKey(keys[1])].sort());
    expect((await log.loadResources([])).size).toBe(0);
  });
});

describe('pruneEvents', () => {
  beforeEach(reset);
  const now = new Date('2030-01-31T00:00:00Z');
  const days = (d: number) => new Date(now.getTime() - d * 86_400_000);

  it('keeps the newest maxCount per subscription', async () => {
    await upsertState(db, 'a', { status: 'active', eventsSinceStart: 10 });
    await insertEvents(db, 'a', eventSeries(1, 10, focus, now));
    await upsertState(db, 'b', { status: 'active', eventsSinceStart: 3 });
    await insertEvents(db, 'b', eventSeries(1, 3, focus, now));
    expect(await log.pruneEvents(now, { maxCount: 4, maxAgeDays: 30 })).toEqual({ deleted: 6, skipped: false });
    expect(await log.retentionBounds('a')).toEqual({ oldestRetained: 7, newestRetained: 10 });
    expect(await log.retentionBounds('b')).toEqual({ oldestRetained: 1, newestRetained: 3 });
    expect(await log.pruneEvents(now, { maxCount: 4, maxAgeDays: 30 })).toEqual({ deleted: 0, skipped: false });
  });

  it('removes events older than maxAgeDays, as a prefix (an out-of-order older stamp goes with its neighbours)', async () => {
    await upsertState(db, 'a', { status: 'active', eventsSinceStart: 5 });
    await insertEvents(db, 'a', [
      { eventNumber: 1, occurredAt: days(40), focus },
      { eventNumber: 2, occurredAt: days(10), focus }, // stamped later than 3: still cut with it
      { eventNumber: 3, occurredAt: days(31), focus },
      { eventNumber: 4, occurredAt: days(29), focus },
      { eventNumber: 5, occurredAt: days(1), focus },
    ]);
    // Orphan events (no state row) are pruned by age too.
    await insertEvents(db, 'orphan', [{ eventNumber: 1, occurredAt: days(60), focus }, { eventNumber: 2, occurredAt: days(2), focus }]);
    expect(await log.pruneEvents(now, { maxCount: 100, maxAgeDays: 30 })).toEqual({ deleted: 4, skipped: false });
    expect(await log.retentionBounds('a')).toEqual({ oldestRetained: 4, newestRetained: 5 });
    expect(await log.retentionBounds('orphan')).toEqual({ oldestRetained: 2, newestRetained: 2 });
  });

  it('applies both rules and works in batches', async () => {
    await upsertState(db, 'a', { status: 'active', eventsSinceStart: 50 });
    await insertEvents(db, 'a', eventSeries(1, 50, focus, now, 60 * 24)); // one a day: 1..50 = 49..0 days old
    const r = await log.pruneEvents(now, { maxCount: 25, maxAgeDays: 10 }, { batchSize: 7 });
    expect(r).toEqual({ deleted: 39, skipped: false });
    expect(await log.retentionBounds('a')).toEqual({ oldestRetained: 40, newestRetained: 50 });
  });

  it('is safe to run concurrently: every event is deleted once, and the result is the same', async () => {
    for (const id of ['a', 'b', 'c']) {
      await upsertState(db, id, { status: 'active', eventsSinceStart: 40 });
      await insertEvents(db, id, eventSeries(1, 40, focus, now));
    }
    const results = await Promise.all([1, 2, 3, 4].map(() => new EventLog(db).pruneEvents(now, { maxCount: 5, maxAgeDays: 30 }, { batchSize: 10 })));
    const total = results.reduce((n, r) => n + r.deleted, 0);
    // A process that finds the lock taken stops; whatever it left is pruned by the next run.
    const again = await log.pruneEvents(now, { maxCount: 5, maxAgeDays: 30 });
    expect(total + again.deleted).toBe(105);
    expect(again.skipped).toBe(false);
    for (const id of ['a', 'b', 'c']) expect(await log.retentionBounds(id)).toEqual({ oldestRetained: 36, newestRetained: 40 });
  });

  it('skips while another transaction holds the pruning lock', async () => {
    await upsertState(db, 'a', { status: 'active', eventsSinceStart: 10 });
    await insertEvents(db, 'a', eventSeries(1, 10, focus, now));
    if (db.kind === 'pglite') return; // one connection: no second session to hold the lock
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(724311017)');
      locked();
      await held;
    });
    await isLocked;
    expect(await log.pruneEvents(now, { maxCount: 2, maxAgeDays: 30 })).toEqual({ deleted: 0, skipped: true });
    release();
    await holder;
    expect(await log.pruneEvents(now, { maxCount: 2, maxAgeDays: 30 })).toEqual({ deleted: 8, skipped: false });
  });
});
