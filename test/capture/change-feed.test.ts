import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Patient } from 'fhir/r4.js';
import { ChangeFeed, positionAdvance, type ChangeRecord } from '../../src/capture/change-feed.js';
import type { Db } from '../../src/store/db.js';
import { openDb } from '../../src/store/open-db.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { changeCollector } from '../support/change-collector.js';
import { openTestDb, TEST_BACKEND } from '../support/test-db.js';

let db: Db;
let config: Awaited<ReturnType<typeof openTestDb>>['config'];
let cleanup: () => Promise<void>;
let feed: ChangeFeed;
let store: ResourceStore;

beforeAll(async () => {
  ({ db, config, cleanup } = await openTestDb());
  feed = new ChangeFeed(db, { pollIntervalMs: 50 });
  await feed.start();
  store = ResourceStore.create(db, { clock: { now: () => new Date() }, afterCommit: () => feed.changed() });
  await db.exec('CREATE TABLE feed_log (consumer text, seq bigint, PRIMARY KEY (consumer, seq))');
});
afterAll(async () => {
  await feed.close();
  await cleanup();
});

const patient = (family: string): Patient => ({ resourceType: 'Patient', name: [{ family }] });

/**
 * A write transaction on `other` that creates a Patient (drawing its sequence number), then stays open
 * until `release()`. Resolves once the number is drawn; `done` gives the Patient's id after the commit.
 */
async function openWriter(other: ResourceStore, family: string): Promise<{ release: () => void; done: Promise<string> }> {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let wrote!: () => void;
  const hasSeq = new Promise<void>((r) => (wrote = r));
  const done = other.transaction(async (s) => {
    const r = await s.create(patient(family));
    wrote();
    await gate;
    return r.resource.id!;
  });
  await hasSeq;
  return { release, done };
}

describe('change feed', () => {
  it('delivers every committed write, in order, with its change details', async () => {
    const c = changeCollector();
    const sub = feed.consume('basic', async (changes) => c.push(changes));
    const { resource } = await store.create(patient('A'));
    await store.update({ ...resource, active: true } as Patient);
    await store.delete('Patient', resource.id!);
    await c.until(() => c.seen.filter((r) => r.id === resource.id).length === 3);
    const mine = c.seen.filter((r) => r.id === resource.id);
    expect(mine.map((r) => [r.interaction, r.versionId, r.previousVersionId, r.method])).toEqual([
      ['create', 1, null, 'POST'],
      ['update', 2, 1, 'PUT'],
      ['delete', 3, 2, 'DELETE'],
    ]);
    const seqs = c.seen.map((r) => r.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    await sub.stop();
  });

  it('never shows a rolled-back write, and carries on past its gap', async () => {
    const c = changeCollector();
    const sub = feed.consume('rollback', async (changes) => c.push(changes));
    await store
      .transaction(async (s) => {
        await s.create(patient('rolled-back'));
        throw new Error('abort');
      })
      .catch(() => undefined);
    const { resource } = await store.create(patient('after-rollback'));
    await c.until(() => c.seen.some((r) => r.id === resource.id));
    const { rows } = await db.query<{ id: string }>("SELECT id FROM resources WHERE content LIKE '%rolled-back%'");
    expect(rows).toHaveLength(0);
    await sub.stop();
  });

  it('resumes from the persisted position after a restart, exactly once', async () => {
    const handler = async (changes: ChangeRecord[], tx: { query: Db['query'] }) => {
      for (const ch of changes) await tx.query('INSERT INTO feed_log (consumer, seq) VALUES ($1, $2)', ['resume', ch.seq]);
    };
    const sub1 = feed.consume('resume', handler);
    for (let i = 0; i < 5; i++) await store.create(patient(`R${i}`));
    await sub1.idle();
    await sub1.stop();
    const pos1 = await feed.position('resume');
    for (let i = 0; i < 5; i++) await store.create(patient(`S${i}`));
    // A second feed instance stands for a restarted process.
    const feed2 = new ChangeFeed(db, { pollIntervalMs: 50 });
    const sub2 = feed2.consume('resume', handler);
    await sub2.idle();
    await sub2.stop();
    await feed2.close();
    const pos2 = await feed2.position('resume');
    expect(pos2).toBeGreaterThan(pos1);
    const logged = (await db.query<{ seq: number }>("SELECT seq FROM feed_log WHERE consumer = 'resume' ORDER BY seq")).rows.map((r) => Number(r.seq));
    const all = (await db.query<{ seq: number }>('SELECT seq FROM resource_history WHERE seq <= $1 ORDER BY seq', [pos2])).rows.map((r) => Number(r.seq));
    expect(logged).toEqual(all);
  });

  it('two feeds (two processes) consuming under one name handle each change exactly once', async () => {
    const handler = async (changes: ChangeRecord[], tx: { query: Db['query'] }) => {
      for (const ch of changes) await tx.query('INSERT INTO feed_log (consumer, seq) VALUES ($1, $2)', ['shared', ch.seq]);
    };
    const other = new ChangeFeed(db, { pollIntervalMs: 20 });
    await other.start();
    const a = feed.consume('shared', handler);
    const b = other.consume('shared', handler);
    await Promise.all(Array.from({ length: 40 }, (_, i) => store.create(patient(`P${i}`))));
    const target = (await db.query<{ m: number }>('SELECT max(seq) AS m FROM resource_history')).rows[0].m;
    while ((await feed.position('shared')) < Number(target)) await a.idle();
    await Promise.all([a.stop(), b.stop()]);
    await other.close();
    const logged = (await db.query<{ seq: number }>("SELECT seq FROM feed_log WHERE consumer = 'shared' ORDER BY seq")).rows.map((r) => Number(r.seq));
    const all = (await db.query<{ seq: number }>('SELECT seq FROM resource_history WHERE seq <= $1 ORDER BY seq', [target])).rows.map((r) => Number(r.seq));
    expect(logged).toEqual(all); // the primary key would have refused a duplicate
  });

  it('two feeds handling batches in one statement with the position advance write each change exactly once', async () => {
    // Every other batch in one statement (gated on the advance), the others in the handler's transaction.
    const handler = async (changes: ChangeRecord[], tx: { query: Db['query'] }) => {
      for (const ch of changes) await tx.query('INSERT INTO feed_log (consumer, seq) VALUES ($1, $2)', ['one-statement', ch.seq]);
    };
    let inOneStatement = 0;
    let calls = 0;
    const oneStatement = async (changes: ChangeRecord[], advance: Parameters<typeof positionAdvance>[0]) => {
      if (calls++ % 2 === 1) return undefined;
      const gate = positionAdvance(advance, 2);
      const res = await db.query<{ advanced: string }>(
        `WITH advanced AS (${gate.sql}), logged AS (
           INSERT INTO feed_log (consumer, seq) SELECT 'one-statement', s FROM unnest($1::bigint[]) AS s WHERE EXISTS (SELECT 1 FROM advanced) RETURNING 1)
         SELECT (SELECT count(*) FROM advanced) AS advanced`,
        [changes.map((c) => c.seq), ...gate.params],
      );
      const advanced = Number(res.rows[0].advanced) === 1;
      if (advanced) inOneStatement++;
      return advanced;
    };
    const other = new ChangeFeed(db, { pollIntervalMs: 20, batchSize: 3 });
    await other.start();
    const writeRounds = async (from: number, to: number) => {
      for (let round = from; round < to; round++) await Promise.all(Array.from({ length: 3 }, (_, i) => store.create(patient(`O${round}-${i}`))));
    };
    // Alone, a feed's batches all go the way it chose.
    const a = feed.consume('one-statement', handler, { oneStatement });
    await a.idle(); // a consumer's first batch reads its position under lock
    await writeRounds(0, 10);
    await a.idle();
    expect(inOneStatement).toBeGreaterThan(0);
    // Two feeds race for the same batches: a lost compare-and-set writes nothing.
    const b = other.consume('one-statement', handler, { oneStatement });
    await writeRounds(10, 30);
    const target = (await db.query<{ m: number }>('SELECT max(seq) AS m FROM resource_history')).rows[0].m;
    while ((await feed.position('one-statement')) < Number(target)) await a.idle();
    await Promise.all([a.stop(), b.stop()]);
    await other.close();
    const logged = (await db.query<{ seq: number }>("SELECT seq FROM feed_log WHERE consumer = 'one-statement' ORDER BY seq")).rows.map((r) => Number(r.seq));
    const all = (await db.query<{ seq: number }>('SELECT seq FROM resource_history WHERE seq <= $1 ORDER BY seq', [target])).rows.map((r) => Number(r.seq));
    expect(logged).toEqual(all); // the primary key would have refused a duplicate
  });

  it('skips batches the consumer declares uninteresting, and hands it every interesting change exactly once', async () => {
    const handled: string[] = [];
    const feeds = [feed, new ChangeFeed(db, { pollIntervalMs: 20 })];
    await feeds[1].start();
    const subs = feeds.map((f) =>
      f.consume(
        'skipper',
        async (changes, tx) => {
          for (const ch of changes) {
            if (ch.resourceType !== 'Observation') continue;
            handled.push(ch.id);
            await tx.query('INSERT INTO feed_log (consumer, seq) VALUES ($1, $2)', ['skipper', ch.seq]);
          }
        },
        {
          skippable: async (changes) => changes.every((c) => c.resourceType !== 'Observation'),
        },
      ),
    );
    const observations: string[] = [];
    for (let i = 0; i < 30; i++) {
      const { resource } = await store.create(i % 3 === 0 ? ({ resourceType: 'Observation', status: 'final', code: { text: `o${i}` } } as never) : patient(`skip${i}`));
      if (resource.resourceType === 'Observation') observations.push(resource.id!);
    }
    const target = (await db.query<{ m: number }>('SELECT max(seq) AS m FROM resource_history')).rows[0].m;
    while ((await feed.position('skipper')) < Number(target)) await subs[0].idle();
    await Promise.all(subs.map((x) => x.stop()));
    await feeds[1].close();
    expect(handled.filter((id) => observations.includes(id)).sort()).toEqual([...observations].sort());
    const logged = (await db.query<{ seq: number }>("SELECT seq FROM feed_log WHERE consumer = 'skipper'")).rows;
    expect(logged.length).toBe(new Set(logged.map((r) => r.seq)).size);
  });

  it('advances past uninteresting changes without calling the handler', async () => {
    let calls = 0;
    const sub = feed.consume('only-skips', async () => void calls++, { skippable: async (changes) => changes.every((c) => c.resourceType === 'Patient') });
    await sub.idle(); // the first batch always goes the locked way
    calls = 0;
    for (let i = 0; i < 5; i++) await store.create(patient(`only${i}`));
    const target = (await db.query<{ m: number }>('SELECT max(seq) AS m FROM resource_history')).rows[0].m;
    while ((await feed.position('only-skips')) < Number(target)) await sub.idle();
    await sub.stop();
    expect(calls).toBe(0);
  });

  it.runIf(TEST_BACKEND === 'pg')('does not pass a change whose earlier neighbour has not committed yet', async () => {
    // A second connection pool, so two write transactions really run at once.
    const db2 = await openDb(config);
    const store2 = ResourceStore.create(db2, { clock: { now: () => new Date() } });
    try {
      const c = changeCollector();
      const sub = feed.consume('out-of-order', async (changes) => c.push(changes));
      await sub.idle();
      // The slow transaction draws the lower sequence number, then waits before committing.
      const slow = await openWriter(store2, 'slow');
      let fast: string;
      try {
        fast = (await store.create(patient('fast'))).resource.id!;
        // Let the consumer run several rounds while the slow transaction is open: a negative check
        // needs a bounded wait.
        for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
        expect(c.seen.some((r) => r.id === fast)).toBe(false);
      } finally {
        slow.release();
      }
      const slowId = await slow.done;
      feed.changed();
      await c.until(() => c.seen.some((r) => r.id === fast));
      const order = c.seen.filter((r) => r.id === fast || r.id === slowId).map((r) => r.id);
      expect(order).toEqual([slowId, fast]);
      await sub.stop();
    } finally {
      await db2.close();
    }
  });

  it.runIf(TEST_BACKEND === 'pg')('passes a committed change while a later writer is still in flight', async () => {
    const db2 = await openDb(config);
    const store2 = ResourceStore.create(db2, { clock: { now: () => new Date() } });
    let slow: Awaited<ReturnType<typeof openWriter>> | undefined;
    try {
      const fast = (await store.create(patient('committed-first'))).resource.id!;
      const seq = Number((await db.query<{ seq: number }>('SELECT seq FROM resource_history WHERE id = $1', [fast])).rows[0].seq);
      // The consumer starts just below the committed change, while a transaction holds the next number.
      await db.query('INSERT INTO feed_positions (consumer, position) VALUES ($1, $2)', ['later-writer', seq - 1]);
      slow = await openWriter(store2, 'still-open');
      const c = changeCollector();
      const sub = feed.consume('later-writer', async (changes) => c.push(changes));
      // Numbers up to the committed change are all visible: it is final although a writer is in flight.
      await c.until(() => c.seen.some((r) => r.id === fast));
      expect(c.seen.map((r) => r.id)).toEqual([fast]);
      slow.release();
      const slowId = await slow.done;
      feed.changed();
      await c.until(() => c.seen.some((r) => r.id === slowId));
      expect(c.seen.map((r) => r.id)).toEqual([fast, slowId]);
      await sub.stop();
    } finally {
      slow?.release();
      await db2.close();
    }
  });

  it('reads current and previous content with the records when the consumer asks for its types', async () => {
    const c = changeCollector();
    const sub = feed.consume('content', async (changes) => c.push(changes), { contentTypes: () => new Set(['Patient']) });
    const { resource } = await store.create(patient('Content'));
    await store.update({ ...resource, active: true } as Patient);
    await store.delete('Patient', resource.id!);
    const other = await store.create({ resourceType: 'Practitioner', name: [{ family: 'NoContent' }] } as never);
    await c.until(() => c.seen.some((r) => r.id === other.resource.id));
    await sub.stop();
    const mine = c.seen.filter((r) => r.id === resource.id);
    const summary = (json: string | null | undefined) => (json ? `active=${String((JSON.parse(json) as Patient).active)}` : json);
    expect(mine.map((r) => [r.interaction, summary(r.content), summary(r.previousContent)])).toEqual([
      ['create', 'active=undefined', null],
      ['update', 'active=true', 'active=undefined'],
      ['delete', null, 'active=true'],
    ]);
    // Types the consumer did not ask for come without content.
    const practitioner = c.seen.find((r) => r.id === other.resource.id)!;
    expect('content' in practitioner).toBe(false);
  });
});
