import type { Db } from './db.js';

/**
 * Keeps a fast-growing table's planner statistics current. Autovacuum analyzes a table at most once a
 * minute (its nap time), so a table that grows a thousandfold in seconds — 100,000 subscriptions
 * created in a burst — would meanwhile be planned as if it were still tiny: a sequential scan per key
 * lookup, and a reused generic plan (QueryOptions.reusePlan) keeps that scan until the statistics
 * change. So the table is analyzed whenever its row count has doubled since the last time; ANALYZE
 * also invalidates every session's cached plans that use it, in every process.
 */
export class StatisticsRefresh {
  private analyzedAt = 0;
  private running: Promise<void> | undefined;
  private latest = 0;

  constructor(
    private readonly db: Db,
    private readonly table: string,
    private readonly onError: (err: unknown) => void = () => undefined,
    /** Below this many rows, any plan is cheap: not worth an ANALYZE. */
    private readonly minRows = 64,
  ) {
    if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`invalid table name ${table}`);
  }

  /** The table holds about `rows` rows now (as the caller counts them). */
  noteRows(rows: number): void {
    this.latest = rows;
    if (this.running || rows < this.minRows || rows < 2 * this.analyzedAt) return;
    this.analyzedAt = rows;
    this.running = this.db
      .exec(`ANALYZE ${this.table}`)
      .catch((err: unknown) => this.onError(err))
      .finally(() => {
        this.running = undefined;
        // Rows that arrived during the ANALYZE may already call for the next one.
        if (this.latest !== rows) this.noteRows(this.latest);
      });
  }

  /** Resolves once no ANALYZE started here is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Row count at the last ANALYZE started here (0 before the first). */
  get lastAnalyzedRows(): number {
    return this.analyzedAt;
  }
}
