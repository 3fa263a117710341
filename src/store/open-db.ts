import type { Db } from './db.js';
import { PgDb } from './pg-db.js';
import { PgliteDb } from './pglite-db.js';
import { migrate } from './migrations.js';

export type StorageConfig =
  | { kind: 'pg'; connectionString: string; poolSize?: number; schema?: string }
  | { kind: 'pglite'; dataDir?: string /* undefined = in memory */ };

/** Opens the configured backend and applies pending migrations. */
export async function openDb(config: StorageConfig, onError?: (err: Error) => void): Promise<Db> {
  const db =
    config.kind === 'pg'
      ? await PgDb.open({ connectionString: config.connectionString, max: config.poolSize, schema: config.schema, onError })
      : await PgliteDb.open(config.dataDir);
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}
