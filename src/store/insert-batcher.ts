import type { Resource } from 'fhir/r4.js';
import type { SearchIndex } from '../fhir/search/types.js';
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
  /** The stored resource and its search index, for a BatchCompanion to look at (not written). */
  stored?: { resource: Resource; index: SearchIndex };
}

/** Where a create ended up: its change record's sequence number, and whether a companion's work ran with it. */
export interface Inserted {
  seq: number;
  /** The companion's gate let it work in this statement (resource_history.events_numbered). */
  companion: boolean;
}

/**
 * Work that rides in the statement storing a batch of creates, so it commits with them (one statement,
 * one commit): Clarion numbers the creates' subscription events this way (src/subscriptions/
 * insert-time-events.ts). The store knows nothing of what the work is; the companion sees the rows and
 * returns SQL that the statement runs around the inserts.
 */
export interface BatchCompanion {
  /**
   * The work for this batch, or undefined to store it alone. Parameters are numbered from `first`.
   * Called right before the statement is sent; the statement's outcome goes to `part.done`.
   */
  prepare(rows: readonly NewVersionRow[], first: number): Promise<CompanionPart | undefined>;
}

export interface CompanionPart {
  /**
   * A query run before any row is stored (rows may be locked there); the companion's work goes ahead
   * only if it returns a row, and the stored change records are then marked `events_numbered`.
   */
  gate: string;
  /**
   * WITH clauses run after the inserts. They may read `gate`, `input` (the batch: n = 1-based row
   * number, resource_type, id, last_updated, …) and `h` (the change records stored: resource_type, id,
   * seq), and must define `companion_out(a text, n bigint)`, whose rows come back to `done`.
   */
  ctes: string;
  params: unknown[];
  /** After the statement committed: the rows' change records (by row, undefined if the id existed) and companion_out. */
  done(result: { seqs: (number | undefined)[]; gated: boolean; out: { a: string; n: number }[] }): void;
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
const INPUT_ROWS = `ROWS FROM (unnest($1::text[]), unnest($2::text[]), unnest($3::timestamptz[]), json_array_elements($4::json),
                             json_array_elements($5::json), json_array_elements($6::json), unnest($7::text[]))
      WITH ORDINALITY AS i(resource_type, id, last_updated, content, idx, tokens, method, n)`;
const INSERT_RESOURCES = `r AS (
    INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content, idx, tokens)
    SELECT resource_type, id, 1, last_updated, false, content::text, idx::jsonb, ARRAY(SELECT json_array_elements_text(tokens))
      FROM input ORDER BY n
    ON CONFLICT DO NOTHING RETURNING resource_type, id)`;
const INSERT_MANY = `WITH input AS (SELECT * FROM ${INPUT_ROWS}),
  ${INSERT_RESOURCES}
  INSERT INTO resource_history (resource_type, id, version_id, previous_version_id, interaction, method, last_updated, deleted, content)
  SELECT i.resource_type, i.id, 1, NULL, 'create', i.method, i.last_updated, false, i.content::text
    FROM input i JOIN r USING (resource_type, id) ORDER BY i.n
  RETURNING resource_type, id, seq`;

/**
 * INSERT_MANY with a companion's work around it. The gate runs before any row: `input` reads it in an
 * uncorrelated subquery, evaluated before its first row, and every insert reads `input` — so locks the
 * gate takes are held before any change record draws its sequence number. The statement returns the
 * change records (kind 'h') and then companion_out (kind 'c').
 */
function insertManyWith(part: CompanionPart): string {
  return `WITH gate AS (${part.gate}),
  input AS (SELECT i.*, (SELECT count(*) FROM gate) > 0 AS gated FROM ${INPUT_ROWS}),
  ${INSERT_RESOURCES},
  h AS (
    INSERT INTO resource_history (resource_type, id, version_id, previous_version_id, interaction, method, last_updated, deleted, content, events_numbered)
    SELECT i.resource_type, i.id, 1, NULL, 'create', i.method, i.last_updated, false, i.content::text, i.gated
      FROM input i JOIN r USING (resource_type, id) ORDER BY i.n
    RETURNING resource_type, id, seq, events_numbered),
  ${part.ctes}
  SELECT 'h' AS kind, h.resource_type AS a, h.id AS b, h.seq AS n, h.events_numbered AS gated FROM h
  UNION ALL SELECT 'c', o.a, NULL, o.n, NULL FROM companion_out o`;
}

interface Pending {
  row: NewVersionRow;
  /** Where the row went, or undefined if the id exists (nothing written). */
  resolve: (inserted: Inserted | undefined) => void;
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
  private companion?: BatchCompanion;

  constructor(
    private readonly q: Queryable,
    private readonly lanes = 1,
    private readonly maxRows = 200,
  ) {}

  /** Work to run in every batch's statement from now on (BatchCompanion). */
  useCompanion(companion: BatchCompanion | undefined): void {
    this.companion = companion;
  }

  /** Resolves once the row is committed; undefined if its id exists (nothing written). */
  insert(row: NewVersionRow): Promise<Inserted | undefined> {
    return new Promise<Inserted | undefined>((resolve, reject) => {
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
    let part: CompanionPart | undefined;
    try {
      part = await this.companion?.prepare(batch.map((p) => p.row), 8);
    } catch {
      part = undefined; // the companion's work is an optimisation: the batch is stored without it
    }
    if (!part && batch.length === 1) return this.runOne(batch[0]);
    let inserted: Map<string, Inserted>;
    let out: { a: string; n: number }[] = [];
    try {
      const params = [
        batch.map((p) => p.row.resourceType),
        batch.map((p) => p.row.id),
        batch.map((p) => p.row.lastUpdated),
        `[${batch.map((p) => p.row.content).join(',')}]`,
        `[${batch.map((p) => p.row.idx).join(',')}]`,
        JSON.stringify(batch.map((p) => p.row.tokens)),
        batch.map((p) => p.row.method),
      ];
      type Row = { kind?: string; resource_type?: string; a?: string; id?: string; b?: string; seq?: number | string; n?: number | string; gated?: boolean | null };
      const { rows } = part
        ? await this.q.query<Row>(insertManyWith(part), [...params, ...part.params], REUSE_PLAN)
        : await this.q.query<Row>(INSERT_MANY, params, REUSE_PLAN);
      inserted = new Map();
      for (const r of rows) {
        if (!part) inserted.set(`${r.resource_type}/${r.id}`, { seq: Number(r.seq), companion: false });
        else if (r.kind === 'h') inserted.set(`${r.a}/${r.b}`, { seq: Number(r.n), companion: r.gated === true });
        else out.push({ a: r.a!, n: Number(r.n) });
      }
    } catch {
      // Nothing of the batch was written: each row on its own, so each create gets its own outcome.
      await Promise.all(batch.map((p) => this.runOne(p)));
      return;
    }
    const results = batch.map((p) => inserted.get(`${p.row.resourceType}/${p.row.id}`));
    if (part) {
      const gated = results.some((r) => r?.companion === true);
      if (!gated) out = [];
      try {
        part.done({ seqs: results.map((r) => r?.seq), gated, out });
      } catch {
        // Its work committed; telling it is best effort (its own errors are its business).
      }
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }

  private async runOne(p: Pending): Promise<void> {
    try {
      const seq = await insertOne(this.q, p.row);
      p.resolve(seq === undefined ? undefined : { seq, companion: false });
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
