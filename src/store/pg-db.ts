import pg from 'pg';
import { abortTracking, type Db, type Queryable, type QueryOptions, type QueryResult, type TransactionOptions } from './db.js';
import { PreparedStatements } from './prepared-statements.js';

// bigint (int8) as JS number: versions and sequence numbers stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PgDbOptions {
  connectionString: string;
  /** Pool size; default 20. */
  max?: number;
  /** Size of the second pool, for statements whose plan is reused (QueryOptions.reusePlan); default 8. */
  reusePlanMax?: number;
  /** Schema to use (created if missing); default `public`. Tests use one schema per file. */
  schema?: string;
  /** Called on connection-level errors (logging); default: ignore. */
  onError?: (err: Error) => void;
  /** How often `notify` may re-count the other listening processes (ms); default 1000. */
  peerCheckMs?: number;
}

/** The first key of the shared advisory lock every listening Clarion process holds (the second: its schema). */
const LISTENER_LOCK = 0x436c6172; // 'Clar'

/**
 * `pg` adapter: a connection pool for queries and transactions, plus one dedicated LISTEN connection
 * that reconnects and re-LISTENs (notifications are only hints, so a gap while reconnecting is safe).
 *
 * NOTIFY costs a round trip and wakes every listener, and a process alone on its database only wakes
 * itself. So each listening process holds a shared advisory lock (per schema) on its LISTEN connection,
 * and `notify` checks — at most once a second — how many hold it. While no other process does, a
 * notification is handed to this process's own handlers directly, as PostgreSQL would have delivered
 * it. A process that starts is seen by the others within a second; until then their polls cover it.
 */
export class PgDb implements Db {
  readonly kind = 'pg' as const;
  private listener: pg.Client | undefined;
  private readonly handlers = new Map<string, Set<(payload: string) => void>>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly prepared = new PreparedStatements();
  /** Other listening processes on this schema at the last check; undefined until known (then NOTIFY). */
  private peers: number | undefined;
  private peersCheckedAt = -Infinity;
  private peerCheck: Promise<void> | undefined;

  private constructor(
    private readonly pool: pg.Pool,
    /** Connections on which PostgreSQL plans a statement once and reuses that plan (force_generic_plan). */
    private readonly reusePool: pg.Pool,
    private readonly options: PgDbOptions,
  ) {}

  static async open(options: PgDbOptions): Promise<PgDb> {
    const schema = options.schema;
    if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
    if (schema) {
      const admin = new pg.Client({ connectionString: options.connectionString });
      await admin.connect();
      try {
        await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      } finally {
        await admin.end();
      }
    }
    // Named statements (PreparedStatements) skip parsing, but on the main pool each execution is still
    // planned for its parameters and the tables' current size: a generic plan cached while a table was
    // small (a scan of subscription_state) stayed in use after 100,000 subscriptions arrived and made
    // every write scan them until the next ANALYZE. The second pool serves the few fixed statements
    // whose plan cannot go stale that way (QueryOptions.reusePlan): there PostgreSQL reuses a generic
    // plan, and planning was a sixth of PostgreSQL's time per write. Set at connection start-up.
    const settings = schema ? [`-c search_path=${schema}`] : [];
    const pool = new pg.Pool({ ...startupOptions(options.connectionString, [...settings, '-c plan_cache_mode=force_custom_plan']), max: options.max ?? 20 });
    const reusePool = new pg.Pool({ ...startupOptions(options.connectionString, [...settings, '-c plan_cache_mode=force_generic_plan']), max: options.reusePlanMax ?? 8 });
    for (const p of [pool, reusePool]) p.on('error', (err) => options.onError?.(err));
    const db = new PgDb(pool, reusePool, options);
    await db.query('SELECT 1');
    return db;
  }

  async query<R = Record<string, unknown>>(sql: string, params: readonly unknown[] = [], options?: QueryOptions): Promise<QueryResult<R>> {
    const res = await (options?.reusePlan ? this.reusePool : this.pool).query(this.statement(sql, params));
    return { rows: res.rows as R[], rowCount: res.rowCount ?? res.rows.length };
  }

  private statement(sql: string, params: readonly unknown[]): pg.QueryConfig {
    // Only parameterised texts: one without parameters may be a script of several statements, which a
    // named statement cannot hold.
    const name = params.length > 0 ? this.prepared.nameFor(sql) : undefined;
    return name === undefined ? { text: sql, values: params as unknown[] } : { name, text: sql, values: params as unknown[] };
  }

  async exec(sql: string): Promise<void> {
    await this.pool.query(sql);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>, options?: TransactionOptions): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query(options?.isolation ? `BEGIN ISOLATION LEVEL ${options.isolation.toUpperCase()}` : 'BEGIN');
      const q: Queryable = {
        query: async <R>(sql: string, params: readonly unknown[] = []) => {
          const res = await client.query(this.statement(sql, params));
          return { rows: res.rows as R[], rowCount: res.rowCount ?? res.rows.length };
        },
        exec: async (sql: string) => {
          await client.query(sql);
        },
      };
      const tracked = abortTracking(q);
      const result = await fn(tracked.q);
      tracked.assertNotAborted();
      await client.query('COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
    if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`invalid channel name ${channel}`);
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
      await this.ensureListener();
      await this.listener?.query(`LISTEN ${channel}`);
    }
    set.add(onNotify);
    return async () => {
      set.delete(onNotify);
    };
  }

  async notify(channel: string, payload = ''): Promise<void> {
    this.checkPeers();
    if (this.peers === 0) {
      setImmediate(() => {
        for (const h of this.handlers.get(channel) ?? []) h(payload);
      });
      return;
    }
    await this.pool.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  /** Other processes listening on this schema at the last count (undefined before the first). */
  get listeningPeers(): number | undefined {
    return this.peers;
  }

  /** Refreshes the count of other listening processes when the last count is over a second old. */
  private checkPeers(): void {
    const now = performance.now();
    if (this.peerCheck || now - this.peersCheckedAt < (this.options.peerCheckMs ?? 1000) || this.closed) return;
    this.peersCheckedAt = now;
    this.peerCheck = this.pool
      .query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_locks
          WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = hashtext(current_schema())::oid AND objsubid = 2
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        [LISTENER_LOCK],
      )
      .then((r) => {
        this.peers = r.rows[0].n - (this.listener ? 1 : 0); // our own LISTEN connection holds one
      })
      .catch(() => {
        this.peers = undefined; // unknown: notify through PostgreSQL
      })
      .finally(() => {
        this.peerCheck = undefined;
      });
  }

  private async ensureListener(): Promise<void> {
    if (this.listener || this.closed) return;
    const client = new pg.Client(startupOptions(this.options.connectionString, this.options.schema ? [`-c search_path=${this.options.schema}`] : []));
    client.on('notification', (msg) => {
      for (const h of this.handlers.get(msg.channel) ?? []) h(msg.payload ?? '');
    });
    const onLost = (err?: Error) => {
      if (err) this.options.onError?.(err);
      if (this.listener !== client) return;
      this.listener = undefined;
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    await client.connect();
    // Held for the connection's life: the others count it to know someone listens (see the class comment).
    await client.query('SELECT pg_advisory_lock_shared($1, hashtext(current_schema()))', [LISTENER_LOCK]);
    this.listener = client;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.ensureListener()
        .then(async () => {
          for (const channel of this.handlers.keys()) await this.listener?.query(`LISTEN ${channel}`);
          // Anything sent while disconnected was missed: wake every handler once so it polls.
          for (const set of this.handlers.values()) for (const h of set) h('');
        })
        .catch((err: Error) => {
          this.options.onError?.(err);
          this.scheduleReconnect();
        });
    }, 500);
    this.reconnectTimer.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const l = this.listener;
    this.listener = undefined;
    if (l) await l.end().catch(() => undefined);
    await Promise.all([this.pool.end(), this.reusePool.end()]);
  }
}

/**
 * The connection string and the server start-up `options` (`-c name=value …`): Clarion's settings added
 * to those the URL's own `options` parameter carries — pg lets the URL's replace the config's, which
 * would drop one or the other.
 */
export function startupOptions(connectionString: string, settings: string[]): { connectionString: string; options?: string } {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return { connectionString, ...(settings.length > 0 ? { options: settings.join(' ') } : {}) };
  }
  const own = url.searchParams.get('options');
  url.searchParams.delete('options');
  const all = [...(own ? [own] : []), ...settings];
  return { connectionString: url.toString(), ...(all.length > 0 ? { options: all.join(' ') } : {}) };
}
