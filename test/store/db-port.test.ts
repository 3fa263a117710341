import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db, Queryable } from '../../src/store/db.js';
import { migrate, MIGRATIONS } from '../../src/store/migrations.js';
import { openDb } from '../../src/store/open-db.js';
import { PgDb, startupOptions } from '../../src/store/pg-db.js';
import { openTestDb, TEST_BACKEND } from '../support/test-db.js';

let db: Db;
let config: Awaited<ReturnType<typeof openTestDb>>['config'];
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, config, cleanup } = await openTestDb());
});
afterAll(async () => cleanup());

describe(`Db port (${TEST_BACKEND})`, () => {
  it('reports its backend kind', () => {
    expect(db.kind).toBe(TEST_BACKEND);
  });

  it('queries with bind parameters and returns rows and counts', async () => {
    await db.exec('CREATE TABLE port_t (k text PRIMARY KEY, n bigint); CREATE INDEX port_t_n ON port_t (n)');
    const ins = await db.query('INSERT INTO port_t VALUES ($1, $2), ($3, $4)', ['a', 1, 'b', 2]);
    expect(ins.rowCount).toBe(2);
    const { rows } = await db.query<{ k: string; n: number }>('SELECT k, n FROM port_t WHERE n >= $1 ORDER BY k', [1]);
    expect(rows).toEqual([
      { k: 'a', n: 1 },
      { k: 'b', n: 2 },
    ]);
  });

  it('commits a transaction that resolves and rolls back one that throws', async () => {
    await db.transaction(async (tx) => {
      await tx.query("INSERT INTO port_t VALUES ('c', 3)");
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO port_t VALUES ('d', 4)");
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const { rows } = await db.query<{ k: string }>("SELECT k FROM port_t WHERE k IN ('c', 'd')");
    expect(rows.map((r) => r.k)).toEqual(['c']);
  });

  it('rolls back a transaction whose statement fails, and stays usable', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO port_t VALUES ('e', 5)");
        await tx.query("INSERT INTO port_t VALUES ('e', 6)"); // duplicate key
      }),
    ).rejects.toThrow();
    const { rows } = await db.query("SELECT k FROM port_t WHERE k = 'e'");
    expect(rows).toHaveLength(0);
  });

  it('does not report a transaction as committed when a statement failed and its error was caught', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO port_t VALUES ('f', 7)");
        await tx.query("INSERT INTO port_t VALUES ('f', 8)").catch(() => undefined); // duplicate key, swallowed
        return 'done';
      }),
    ).rejects.toThrow(/rolled back: a statement in it failed/);
    const { rows } = await db.query("SELECT k FROM port_t WHERE k = 'f'");
    expect(rows).toHaveLength(0);
    await db.transaction(async (tx) => tx.query("INSERT INTO port_t VALUES ('g', 9)"));
    expect((await db.query("SELECT k FROM port_t WHERE k = 'g'")).rows).toHaveLength(1);
  });

  it('delivers NOTIFY to listeners, and stops after unlisten', async () => {
    const got: string[] = [];
    let resolve!: () => void;
    const first = new Promise<void>((r) => (resolve = r));
    const unlisten = await db.listen('port_channel', (p) => {
      got.push(p);
      resolve();
    });
    await db.notify('port_channel', 'hello');
    await first;
    expect(got).toEqual(['hello']);
    await unlisten();
  });

  it.runIf(TEST_BACKEND === 'pg')('plans every execution of a named statement for its parameters (no stale generic plans)', async () => {
    for (let i = 0; i < 8; i++) {
      const { rows } = await db.query<{ mode: string }>("SELECT current_setting('plan_cache_mode') AS mode WHERE $1::int >= 0", [i]);
      expect(rows[0].mode).toBe('force_custom_plan');
    }
  });

  it.runIf(TEST_BACKEND === 'pg')('reuses one generic plan for statements that ask for it, outside transactions only', async () => {
    const mode = async (q: Queryable, reusePlan: boolean) =>
      (await q.query<{ mode: string }>("SELECT current_setting('plan_cache_mode') AS mode WHERE $1::int >= 0", [1], { reusePlan })).rows[0].mode;
    expect(await mode(db, true)).toBe('force_generic_plan');
    expect(await mode(db, false)).toBe('force_custom_plan');
    // A transaction is one connection: its statements all run as the main pool's do.
    expect(await db.transaction((tx) => mode(tx, true))).toBe('force_custom_plan');
    // Both pools see each other's commits at once (each statement commits before it returns).
    await db.query('INSERT INTO port_t VALUES ($1, $2)', ['reuse', 9], { reusePlan: true });
    expect((await db.query('SELECT n FROM port_t WHERE k = $1', ['reuse'])).rows).toEqual([{ n: 9 }]);
  });

  it.runIf(TEST_BACKEND === 'pg')('keeps start-up options the database URL carries next to its own', async () => {
    if (config.kind !== 'pg') return;
    const u = new URL(config.connectionString);
    u.searchParams.set('options', '-c statement_timeout=12345');
    const other = await PgDb.open({ connectionString: u.toString(), schema: config.schema, max: 2 });
    try {
      const { rows } = await other.query<{ t: string; mode: string; path: string }>(
        "SELECT current_setting('statement_timeout') AS t, current_setting('plan_cache_mode') AS mode, current_setting('search_path') AS path",
      );
      expect(rows[0]).toEqual({ t: '12345ms', mode: 'force_custom_plan', path: config.schema });
    } finally {
      await other.close();
    }
    expect(startupOptions('postgres://u@h/db?options=-c%20a%3D1&sslmode=disable', ['-c b=2'])).toEqual({
      connectionString: 'postgres://u@h/db?sslmode=disable',
      options: '-c a=1 -c b=2',
    });
  });

  it('migrations are recorded and safe to run again, also concurrently', async () => {
    expect(await migrate(db)).toEqual([]);
    const { rows } = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    if (config.kind === 'pg') {
      const other = await openDb(config);
      try {
        const results = await Promise.all([migrate(db), migrate(other), migrate(other)]);
        expect(results.flat()).toEqual([]);
      } finally {
        await other.close();
      }
    }
  });
});
