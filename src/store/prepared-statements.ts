import { createHash } from 'node:crypto';

/**
 * Chooses which SQL texts run as named (prepared) statements on PostgreSQL. A named statement is parsed
 * and analysed once per connection instead of on every execution (each execution is still planned: see
 * `plan_cache_mode` in pg-db.ts); under write load parsing, analysis and planning were about a quarter
 * of PostgreSQL's CPU. Only texts that recur
 * are named (the hot fixed statements); a text is named from its `threshold`-th use on, and at most
 * `capacity` texts ever are, because every connection keeps each named statement's plan for its life and
 * search SQL is built per query shape.
 */
export class PreparedStatements {
  private readonly uses = new Map<string, number>();
  private readonly names = new Map<string, string>();

  constructor(
    private readonly threshold = 3,
    private readonly capacity = 200,
    /** Texts counted but not yet named; beyond it the counts start over (bounded memory). */
    private readonly countLimit = 5000,
  ) {}

  /** The statement name to run `sql` under, or undefined to run it unnamed. */
  nameFor(sql: string): string | undefined {
    const name = this.names.get(sql);
    if (name !== undefined || this.names.size >= this.capacity) return name;
    const n = (this.uses.get(sql) ?? 0) + 1;
    if (n < this.threshold) {
      if (this.uses.size >= this.countLimit) this.uses.clear();
      this.uses.set(sql, n);
      return undefined;
    }
    this.uses.delete(sql);
    // The name is a digest of the text: node-pg refuses one name for two texts on a connection.
    const named = `clarion_${createHash('sha1').update(sql).digest('hex').slice(0, 20)}`;
    this.names.set(sql, named);
    return named;
  }

  get size(): number {
    return this.names.size;
  }
}
