import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.js';
import { StatisticsRefresh } from '../../src/store/statistics-refresh.js';
import { openTestDb, TEST_BACKEND } from '../support/test-db.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await db.exec('CREATE TABLE grows (k int PRIMARY KEY)');
});
afterAll(async () => cleanup());

/** The row count the planner believes (-1: never analyzed). */
async function plannerRows(): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT reltuples::int AS n FROM pg_class WHERE oid = 'grows'::regclass");
  return rows[0].n;
}

async function growTo(n: number): Promise<void> {
  await db.query('INSERT INTO grows SELECT g FROM generate_series(1, $1::int) g ON CONFLICT DO NOTHING', [n]);
}

describe(`statistics refresh (${TEST_BACKEND})`, () => {
  it('analyzes a table each time it has doubled, not on every change', async () => {
    const errors: unknown[] = [];
    const refresh = new StatisticsRefresh(db, 'grows', (err) => errors.push(err), 64);
    await growTo(10);
    refresh.noteRows(10);
    await refresh.idle();
    expect(await plannerRows()).toBe(-1); // small: any plan is cheap

    await growTo(64);
    refresh.noteRows(64);
    await refresh.idle();
    expect(await plannerRows()).toBe(64);

    await growTo(100);
    refresh.noteRows(100);
    await refresh.idle();
    expect(await plannerRows()).toBe(64); // not doubled yet

    await growTo(5000);
    refresh.noteRows(5000);
    await refresh.idle();
    expect(await plannerRows()).toBe(5000);
    expect(refresh.lastAnalyzedRows).toBe(5000);
    expect(errors).toEqual([]);
  });

  it('reports a failed ANALYZE to its error handler and goes on', async () => {
    const errors: unknown[] = [];
    const refresh = new StatisticsRefresh(db, 'no_such_table', (err) => errors.push(err), 1);
    refresh.noteRows(5);
    await refresh.idle();
    expect(errors).toHaveLength(1);
  });

  it('refuses a table name that is not a plain identifier', () => {
    expect(() => new StatisticsRefresh(db, 'grows; DROP TABLE grows')).toThrow(/invalid table name/);
  });
});
