import type { QueryOptions, Queryable } from './db.js';

/** The inserts scan nothing (ON CONFLICT probes the primary key), so their plan never goes stale. */
const REUSE_PLAN: QueryOptions = { reusePlan: true };

/** Version 1 of a new resource, ready to store (content and search index already serialised). */
export interface NewVersionRow {
  resourceType: string;
  id: string;
  lastUpdated: string;
  content: string;
  /** The search index (`resources.idx`) as JSON text. */
  idx: string;
  tokens: string[];
  method: string;
}

const INSERT_ONE = `WITH r AS (
    INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content, idx, tokens)
    VALUES ($1, $2, 1, $3, false, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING 1)
  INSERT INTO resource_history (resource_type, id, version_id, previous_version_id, interaction, method, last_updated, deleted, content)
  SELECT $1, $2, 1, NULL, 'create', $7, $3, false, $4 FROM r RETURNING seq`;

// The rows as parallel columns, zipped by ROWS FROM and inserted in order; an id that exists already
// is skipped (ON CONFLICT) and gets no change record. The JSON columns (content, search index, tokens)
// come as one JSON array each, joined from the serialised texts: the pg client would otherwise escape
// every quote of every resource into a text[] literal, the largest allocation of a create. On the
// `json` type (not jsonb) json_array_elements returns each element's text exactly as sent, so the
// stored content is the text the store serialised.
const INSERT_MANY = `WITH input AS (
    SELECT * FROM ROWS FROM (unnest($1::text[]), unnest($2::text[]), unnest($3::timestamptz[]), json_array_elements($4::json),
                             json_array_elements($5::json), json_array_elements($6::json), unnest($7::text[]))
      WITH ORDINALITY AS i(resource_type, id, last_updated, content, idx, tokens, method, n)),
  r AS (
    INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content, idx, tokens)
    SELECT resource_type, id, 1, last_updated, false, content::text, idx::jsonb, ARRAY(SELECT json_array_elements_text(tokens))
      FROM input ORDER BY n
    ON CONFLICT DO NOTHING RETURNING resource_type, id)
  INSERT INTO resource_history (resource_type, id, version_id, previous_version_id, interaction, method, last_updated, deleted, content)
  SELECT i.resource_type, i.id, 1, NULL, 'create', i.method, i.last_updated, false, i.content::text
    FROM input i JOIN r USING (resource_type, id) ORDER BY i.n
  RETURNING resource_type, id, seq`;

interface Pending {
  row: NewVersionRow;
  /** The change record's sequence number, or undefined if the id exists (nothing written). */
  resolve: (seq: number | undefined) => void;
  reject: (err: unknown) => void;
}

/**
 * Stores new resources (outside transactions) with natural batching: while `lanes` insert statements
 * are in flight, further creates wait, and the next statement stores all of them at once — one
 * statement, one commit, one WAL flush. A lone create goes out at once as a single-row statement, so
 * nothing waits unless the database is already busy with creates. Under 16 concurrent writers this
 * halved PostgreSQL's CPU per stored row and cut the pg client's work by a third. One lane (the
 * default) batches more than two: at 1,000 writes/s with notifications it halved the insert statements
 * and cut write→notification p99 by ~15% on the 2-core benchmark machine (a round trip there costs as
 * much CPU as the work it carries), with plain creates at 16 writers unchanged.
 *
 * Each create still stands alone: all rows of a statement commit together, and each caller hears only
 * of its own row (inserted, or its id taken). If a batch statement fails, its rows are retried one by
 * one so that an error reaches only the create it belongs to.
 */
export class InsertBatcher {
  private readonly queue: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly q: Queryable,
    private readonly lanes = 1,
    private readonly maxRows = 200,
  ) {}

  /** Resolves with the change record's sequence number once the row is committed; undefined if its id exists (nothing written). */
  insert(row: NewVersionRow): Promise<number | undefined> {
    return new Promise<number | undefined>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.lanes && this.queue.length > 0) {
      const batch = this.takeBatch();
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  /** Up to maxRows queued rows, in order, one per resource (a second create of one id waits for the next statement). */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    for (let i = 0; i < this.queue.length && batch.length < this.maxRows; ) {
      const p = this.queue[i];
      const key = `${p.row.resourceType}/${p.row.id}`;
      if (keys.has(key)) {
        i++;
        continue;
      }
      keys.add(key);
      batch.push(p);
      this.queue.splice(i, 1);
    }
    return batch;
  }

  private async run(batch: Pending[]): Promise<void> {
    if (batch.length === 1) return this.runOne(batch[0]);
    let inserted: Map<string, number>;
    try {
      const { rows } = await this.q.query<{ resource_type: string; id: string; seq: number | string }>(INSERT_MANY, [
        batch.map((p) => p.row.resourceType),
        batch.map((p) => p.row.id),
        batch.map((p) => p.row.lastUpdated),
        `[${batch.map((p) => p.row.content).join(',')}]`,
        `[${batch.map((p) => p.row.idx).join(',')}]`,
        JSON.stringify(batch.map((p) => p.row.tokens)),
        batch.map((p) => p.row.method),
      ], REUSE_PLAN);
      inserted = new Map(rows.map((r) => [`${r.resource_type}/${r.id}`, Number(r.seq)]));
    } catch {
      // Nothing of the batch was written: each row on its own, so each create gets its own outcome.
      await Promise.all(batch.map((p) => this.runOne(p)));
      return;
    }
    for (const p of batch) p.resolve(inserted.get(`${p.row.resourceType}/${p.row.id}`));
  }

  private async runOne(p: Pending): Promise<void> {
    try {
      p.resolve(await insertOne(this.q, p.row));
    } catch (err) {
      p.reject(err);
    }
  }
}

/** Stores one new resource through `q` (e.g. a transaction): its change record's sequence number, undefined if its id exists (nothing written). */
export async function insertOne(q: Queryable, r: NewVersionRow): Promise<number | undefined> {
  const { rows } = await q.query<{ seq: number | string }>(INSERT_ONE, [r.resourceType, r.id, r.lastUpdated, r.content, r.idx, r.tokens, r.method], REUSE_PLAN);
  return rows.length > 0 ? Number(rows[0].seq) : undefined;
}
