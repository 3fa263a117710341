import { PGlite, type Transaction } from '@electric-sql/pglite';
import { abortTracking, type Db, type Queryable, type QueryResult, type TransactionOptions } from './db.js';

/** PGlite adapter: one embedded PostgreSQL (WASM) connection; queries and transactions serialise. */
export class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  private closed = false;

  private constructor(private readonly pg: PGlite) {}

  /** `dataDir` undefined = in memory (throwaway); otherwise a directory on disk. */
  static async open(dataDir?: string): Promise<PgliteDb> {
    const pg = dataDir ? new PGlite(dataDir) : new PGlite();
    await pg.waitReady;
    return new PgliteDb(pg);
  }

  async query<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const res = await this.pg.query<R>(sql, params as unknown[]);
    return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
  }

  async exec(sql: string): Promise<void> {
    await this.pg.exec(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return this.pg.transaction(async (tx: Transaction) => {
      if (options?.isolation) await tx.query(`SET TRANSACTION ISOLATION LEVEL ${options.isolation.toUpperCase()}`);
      const q: Queryable = {
        query: async <R>(sql: string, params: readonly unknown[] = []) => {
          const res = await tx.query<R>(sql, params as unknown[]);
          return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
        },
        exec: async (sql: string) => {
          await tx.exec(sql);
        },
      };
      const tracked = abortTracking(q);
      const result = await fn(tracked.q);
      tracked.assertNotAborted();
      return result;
    });
  }

  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    const unsub = await this.pg.listen(channel, onNotify);
    return async () => {
      if (!this.closed) await unsub();
    };
  }

  async notify(channel: string, payload = ''): Promise<void> {
    await this.pg.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pg.close();
  }
}
