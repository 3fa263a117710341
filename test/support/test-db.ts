/**
 * Test databases: the whole suite runs once per backend (CLARION_TEST_BACKEND=pglite|pg). Each test
 * file gets its own isolated database — a fresh in-memory PGlite, or a fresh PostgreSQL schema —
 * so files never depend on each other's data or order.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { Db } from '../../src/store/db.js';
import { openDb, type StorageConfig } from '../../src/store/open-db.js';

export const TEST_BACKEND: 'pglite' | 'pg' = process.env.CLARION_TEST_BACKEND === 'pg' ? 'pg' : 'pglite';
export const TEST_PG_URL = process.env.CLARION_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A storage config for a fresh, isolated database. */
export function freshStorageConfig(): StorageConfig {
  if (TEST_BACKEND === 'pg') {
    return { kind: 'pg', connectionString: TEST_PG_URL, schema: `t_${randomBytes(6).toString('hex')}`, poolSize: 10 };
  }
  return { kind: 'pglite' };
}

/** Drops a test schema made by freshStorageConfig (no-op for PGlite). */
export async function dropStorage(config: StorageConfig): Promise<void> {
  if (config.kind !== 'pg' || !config.schema) return;
  const c = new pg.Client({ connectionString: config.connectionString });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${config.schema} CASCADE`);
  } finally {
    await c.end();
  }
}

/** Opens a fresh migrated database; call the returned cleanup in afterAll. */
export async function openTestDb(): Promise<{ db: Db; config: StorageConfig; cleanup: () => Promise<void> }> {
  const config = freshStorageConfig();
  const db = await openDb(config);
  return {
    db,
    config,
    cleanup: async () => {
      await db.close();
      await dropStorage(config);
    },
  };
}

/** A fresh migrated database for the calling test file: opened before its tests run, dropped after. */
export function useTestDb(): { readonly db: Db } {
  const opened: { db?: Db; cleanup?: () => Promise<void> } = {};
  beforeAll(async () => Object.assign(opened, await openTestDb()));
  afterAll(async () => opened.cleanup?.());
  return {
    get db(): Db {
      if (!opened.db) throw new Error('useTestDb(): the database opens in beforeAll; use it inside tests');
      return opened.db;
    },
  };
}
