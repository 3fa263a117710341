/**
 * The storage port (after pg-boss's one-method `db.executeSql`): everything Clarion stores goes through
 * `query`, `transaction` and `listen`/`notify`, with one SQL dialect (PostgreSQL 15) on two adapters:
 * PGlite (embedded) and `pg` (PostgreSQL server).
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface QueryOptions {
  /**
   * The statement's best plan depends neither on its parameter values nor on table sizes that can grow
   * unnoticed, so the server may plan it once and reuse that plan (PostgreSQL's generic plan). Only for
   * fixed hot statements that insert without scanning, or look rows up by a key in a table whose
   * statistics Clarion refreshes as it grows (statistics-refresh.ts). Ignored inside transactions.
   */
  reusePlan?: boolean;
}

export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

export interface TransactionOptions {
  /** Defaults to READ COMMITTED. */
  isolation?: 'read committed' | 'repeatable read' | 'serializable';
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'pg';
  /** Runs `fn` in one database transaction; commits if it resolves, rolls back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Subscribes to a NOTIFY channel. Notifications are hints only (they can be lost across reconnects);
   * consumers must also poll. Returns an unsubscribe function.
   */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /** Sends a NOTIFY in its own statement (never inside a data transaction: that serialises commits). */
  notify(channel: string, payload?: string): Promise<void>;
  close(): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/**
 * Wraps a transaction's Queryable to remember whether one of its statements failed. PostgreSQL turns
 * the COMMIT of such a transaction into a rollback without an error, so if the caller caught the
 * statement's error and carried on, the transaction would look committed (and its writes' events,
 * caches and replies with it). `assertNotAborted` after the callback turns that into an error.
 */
export function abortTracking(q: Queryable): { q: Queryable; assertNotAborted: () => void } {
  let failure: unknown;
  const track = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      failure ??= err;
      throw err;
    }
  };
  return {
    q: {
      query: (sql, params, options) => track(() => q.query(sql, params, options)),
      exec: (sql) => track(() => q.exec(sql)),
    },
    assertNotAborted: () => {
      if (failure !== undefined) {
        const reason = failure instanceof Error ? failure.message : 'unknown error';
        throw new Error(`the transaction was rolled back: a statement in it failed (${reason})`, { cause: failure });
      }
    },
  };
}
