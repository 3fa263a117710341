/**
 * Creates outside a transaction are stored with natural batching (src/store/insert-batcher.ts): while
 * statements are in flight, waiting creates share the next one. Each create must still stand alone:
 * its own version 1 and change record, its own outcome (id taken, database error), on both backends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Patient } from 'fhir/r4.js';
import type { Db, Queryable } from '../../src/store/db.js';
import { InsertBatcher, type NewVersionRow } from '../../src/store/insert-batcher.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { openTestDb } from '../support/test-db.js';

let db: Db;
let cleanup: () => Promise<void>;
let store: ResourceStore;
let commits = 0;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  store = ResourceStore.create(db, { clock: { now: () => new Date() }, afterCommit: () => commits++ });
});
afterAll(async () => cleanup());

const patient = (family: string): Patient => ({ resourceType: 'Patient', name: [{ family }] });

async function historyOf(id: string): Promise<{ seq: number; version_id: number; interaction: string }[]> {
  const { rows } = await db.query<{ seq: number; version_id: number; interaction: string }>(
    'SELECT seq, version_id, interaction FROM resource_history WHERE resource_type = $1 AND id = $2',
    ['Patient', id],
  );
  return rows;
}

/** Counts the statements that reach the database (a pass-through to the real one). */
function counting(q: Queryable): { q: Queryable; statements: () => number } {
  let n = 0;
  return {
    q: {
      query: (sql, params) => {
        n++;
        return q.query(sql, params);
      },
      exec: (sql) => q.exec(sql),
    },
    statements: () => n,
  };
}

function row(id: string, family: string): NewVersionRow {
  const content = JSON.stringify({ resourceType: 'Patient', id, meta: { versionId: '1' }, name: [{ family }] });
  return { resourceType: 'Patient', id, lastUpdated: new Date().toISOString(), content, idx: '{}', tokens: [`_id=${id}`], method: 'POST' };
}

describe('creates stored together', () => {
  it('200 concurrent creates: each stored once, as version 1 with one change record, content intact', async () => {
    const before = commits;
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => store.create(patient(`Batch${i}`))));
    expect(commits - before).toBe(200);
    const ids = results.map((r) => r.resource.id as string);
    expect(new Set(ids).size).toBe(200);
    const seqs: number[] = [];
    for (const [i, id] of ids.entries()) {
      const read = (await store.read('Patient', id)) as Patient;
      expect(read.name?.[0]?.family).toBe(`Batch${i}`);
      expect(read.meta?.versionId).toBe('1');
      const h = await historyOf(id);
      expect(h).toHaveLength(1);
      expect(h[0]).toMatchObject({ version_id: 1, interaction: 'create' });
      seqs.push(Number(h[0].seq));
    }
    expect(new Set(seqs).size).toBe(200);
  });

  it('shares statements while others are in flight, and a lone create goes out at once', async () => {
    const c = counting(db);
    const batcher = new InsertBatcher(c.q);
    const results = (await Promise.all(Array.from({ length: 40 }, (_, i) => batcher.insert(row(`share-${i}`, `Share${i}`))))).map((r) => r?.seq);
    // Each create hears its own change record's sequence number.
    expect(results.every((seq) => typeof seq === 'number')).toBe(true);
    expect(new Set(results).size).toBe(40);
    for (const [i, seq] of results.entries()) expect(Number((await historyOf(`share-${i}`))[0].seq)).toBe(seq);
    expect(c.statements()).toBeLessThan(40);
    const before = c.statements();
    expect(await batcher.insert(row('alone', 'Alone'))).toEqual({ seq: expect.any(Number), companion: false });
    expect(c.statements()).toBe(before + 1);
  });

  it('concurrent creates of one id: one stores it, the others hear the id is taken; one change record', async () => {
    const outcomes = await Promise.allSettled(Array.from({ length: 6 }, () => store.create(patient('Same'), { id: 'same-id' })));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as { status?: number }).status).toBe(409);
    expect(await historyOf('same-id')).toHaveLength(1);
  });

  it('a row the database refuses fails only its own create; the rest of its batch is stored', async () => {
    const batcher = new InsertBatcher(db);
    const rows = Array.from({ length: 10 }, (_, i) => row(`mixed-${i}`, `Mixed${i}`));
    rows[5] = { ...rows[5], idx: 'not json' }; // refused by the jsonb cast
    const outcomes = await Promise.allSettled(rows.map((r) => batcher.insert(r)));
    expect(outcomes[5].status).toBe('rejected');
    for (const [i, o] of outcomes.entries()) if (i !== 5) expect(o).toEqual({ status: 'fulfilled', value: { seq: expect.any(Number), companion: false } });
    expect(await historyOf('mixed-5')).toHaveLength(0);
    expect(await historyOf('mixed-9')).toHaveLength(1);
  });

  it('a shared statement stores each content, search index and tokens exactly as serialised', async () => {
    const c = counting(db);
    const batcher = new InsertBatcher(c.q);
    const tricky = ['quote " and backslash \\ and \\"', 'Ø unicode ✓ 🙂', 'line\nbreak\ttab \u2028 sep', '{"looks": ["like", "json"]}', ''];
    const rows = tricky.map((family, i) => {
      const r = row(`exact-${i}`, family);
      // Whitespace outside strings too: the text is kept as sent, not normalised.
      return { ...r, content: JSON.stringify(JSON.parse(r.content), null, i % 2 === 0 ? 2 : undefined), idx: JSON.stringify({ family: { s: [family] } }), tokens: [`_id=${r.id}`, `name=${family}`] };
    });
    const before = c.statements();
    const seqs = (await Promise.all(rows.map((r) => batcher.insert(r)))).map((r) => r?.seq);
    expect(seqs.every((seq) => typeof seq === 'number')).toBe(true);
    expect(c.statements() - before).toBeLessThan(rows.length); // some went out together
    for (const r of rows) {
      const { rows: stored } = await db.query<{ content: string; history: string; idx: unknown; tokens: string[] }>(
        `SELECT r.content, h.content AS history, r.idx, r.tokens FROM resources r JOIN resource_history h USING (resource_type, id)
          WHERE r.resource_type = 'Patient' AND r.id = $1`,
        [r.id],
      );
      expect(stored[0].content).toBe(r.content);
      expect(stored[0].history).toBe(r.content);
      expect(stored[0].idx).toEqual(JSON.parse(r.idx));
      expect(stored[0].tokens).toEqual(r.tokens);
    }
  });
});
