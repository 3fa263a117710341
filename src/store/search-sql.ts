/**
 * SQL search over `resources`: filters (conditions.ts → sql-where.ts), sorting, keyset paging with
 * opaque cursors (cursor.ts), totals, and _include/_revinclude (include.ts). Only current, non-deleted
 * rows are searched.
 *
 * Paging is keyset, never OFFSET: rows are ordered by the sort keys, then by id; a cursor holds the
 * key values of the boundary row, so `next`/`previous` pages stay stable under concurrent writes
 * (resources that do not change are neither duplicated nor skipped).
 */
import type { Resource } from 'fhir/r4.js';
import type { Queryable } from './db.js';
import type { ParsedSearch, SearchMatch, SearchPage, SortSpec } from '../fhir/search/types.js';
import { searchCondition } from '../fhir/search/conditions.js';
import { SqlParams, condSql } from '../fhir/search/sql-where.js';
import { getSearchParam } from '../fhir/search/params.js';
import { decodeCursor, encodeCursor } from '../fhir/search/cursor.js';
import { collectIncludes } from '../fhir/search/include.js';

type Cast = 'text' | 'numeric' | 'timestamptz' | 'boolean';

interface SortKey {
  /** SQL over the inner query's columns (alias q) */
  sql: string;
  /** SQL giving the key as text (for the cursor) */
  text: string;
  cast: Cast;
  desc: boolean;
}

const TEXT_FIELDS: Record<string, string> = { string: 'n', token: 'c', reference: 'r', uri: 'u' };
const RANGE_FIELDS: Record<string, string> = { date: 'd', number: 'v', quantity: 'q' };

/** The WHERE clause of a search (alias r). */
export function searchWhere(search: ParsedSearch, p: SqlParams, now = Date.now()): string {
  const cond = searchCondition(search.resourceType, search.filters, now);
  return `r.resource_type = ${p.add(search.resourceType)} AND r.deleted = false AND ${condSql(cond, p, { alias: 'r', depth: 0 })}`;
}

/** Raw sort values (inner query columns) and the ordered keys built on them. */
function sortKeys(search: ParsedSearch, p: SqlParams): { raw: string[]; keys: SortKey[] } {
  const raw: string[] = [];
  const keys: SortKey[] = [];
  const specs: SortSpec[] = search.sort.length > 0 ? search.sort : [{ code: '_lastUpdated', descending: false }];
  for (const s of specs) {
    const col = `s${raw.length}`;
    if (s.code === '_id') {
      raw.push(`r.id COLLATE "C" AS ${col}`);
      keys.push({ sql: `q.${col}`, text: `q.${col}`, cast: 'text', desc: s.descending });
      continue;
    }
    if (s.code === '_lastUpdated') {
      raw.push(`r.last_updated AS ${col}`);
      keys.push({ sql: `q.${col}`, text: `to_char(q.${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`, cast: 'timestamptz', desc: s.descending });
      continue;
    }
    const def = getSearchParam(search.resourceType, s.code);
    if (!def) continue;
    const agg = s.descending ? 'max' : 'min';
    const code = p.add(s.code);
    let expr: string;
    let cast: Cast;
    if (TEXT_FIELDS[def.type]) {
      expr = `(SELECT ${agg}(x COLLATE "C") FROM jsonb_array_elements_text(coalesce(r.idx->${code}->'${TEXT_FIELDS[def.type]}', '[]'::jsonb)) x)`;
      cast = 'text';
    } else if (RANGE_FIELDS[def.type]) {
      expr = `(SELECT ${agg}((e->>${s.descending ? 1 : 0})::numeric) FROM jsonb_array_elements(coalesce(r.idx->${code}->'${RANGE_FIELDS[def.type]}', '[]'::jsonb)) e)`;
      cast = 'numeric';
    } else continue;
    raw.push(`${expr} AS ${col}`);
    // Resources without a value sort last in both directions.
    keys.push({ sql: `(q.${col} IS NULL)`, text: `(q.${col} IS NULL)::text`, cast: 'boolean', desc: false });
    const dflt = cast === 'text' ? `''` : '0';
    keys.push({ sql: `COALESCE(q.${col}, ${dflt})`, text: `COALESCE(q.${col}, ${dflt})::text`, cast, desc: s.descending });
  }
  keys.push({ sql: 'q.id COLLATE "C"', text: 'q.id', cast: 'text', desc: false });
  return { raw, keys };
}

function castParam(ph: string, cast: Cast): string {
  return cast === 'text' ? `${ph}::text COLLATE "C"` : `${ph}::${cast}`;
}

/** Rows strictly after (`forward`) or before the boundary, in the keys' order. */
function keysetCondition(keys: SortKey[], values: string[], forward: boolean, p: SqlParams): string {
  const ors: string[] = [];
  const ph = values.map((v, i) => castParam(p.add(v), keys[i].cast));
  for (let i = 0; i < keys.length; i++) {
    const eqs = keys.slice(0, i).map((k, j) => `${k.sql} = ${ph[j]}`);
    const after = keys[i].desc ? !forward : forward;
    eqs.push(`${keys[i].sql} ${after ? '>' : '<'} ${ph[i]}`);
    ors.push(`(${eqs.join(' AND ')})`);
  }
  return `(${ors.join(' OR ')})`;
}

interface Row {
  id: string;
  content: string;
  tokens: string[];
  [k: string]: unknown;
}

/** Counts all matches of a search. */
export async function countMatches(q: Queryable, search: ParsedSearch): Promise<number> {
  const p = new SqlParams();
  const res = await q.query<{ n: number | string }>(`SELECT count(*) AS n FROM resources r WHERE ${searchWhere(search, p)}`, p.values);
  return Number(res.rows[0]?.n ?? 0);
}

/** Ids of up to `limit` matches (for conditional create/update/delete: ask for 2 to detect "several"). */
export async function findMatchingIds(q: Queryable, search: ParsedSearch, limit: number): Promise<string[]> {
  const p = new SqlParams();
  const lim = p.add(Math.max(0, Math.floor(limit)));
  const res = await q.query<{ id: string }>(`SELECT r.id FROM resources r WHERE ${searchWhere(search, p)} ORDER BY r.id LIMIT ${lim}`, p.values);
  return res.rows.map((r) => r.id);
}

/** Runs a search: one page of matches (in sort order), included resources, cursors and total. */
export async function executeSearch(q: Queryable, search: ParsedSearch): Promise<SearchPage> {
  const p = new SqlParams();
  const { raw, keys } = sortKeys(search, p);
  const where = searchWhere(search, p);
  const cursor = search.cursor !== undefined ? decodeCursor(search, search.cursor, keys.length) : undefined;
  const forward = cursor?.dir !== 'prev';
  const count = search.count;

  let rows: Row[] = [];
  if (count > 0) {
    const boundary = cursor ? `WHERE ${keysetCondition(keys, [...cursor.keys.slice(0, -1).map((k) => k ?? ''), cursor.id], forward, p)}` : '';
    const order = keys.map((k) => `${k.sql} ${(k.desc ? !forward : forward) ? 'ASC' : 'DESC'}`).join(', ');
    const sql = `SELECT q.id, q.content, q.tokens, ${keys.map((k, i) => `${k.text} AS k${i}`).join(', ')}
      FROM (SELECT r.id, r.content, r.tokens${raw.length > 0 ? ', ' + raw.join(', ') : ''} FROM resources r WHERE ${where}) q
      ${boundary} ORDER BY ${order} LIMIT ${p.add(count + 1)}`;
    rows = (await q.query<Row>(sql, p.values)).rows;
  }
  const more = rows.length > count;
  if (more) rows = rows.slice(0, count);
  if (!forward) rows.reverse();

  const keyValues = (r: Row): (string | null)[] => keys.map((_k, i) => (r[`k${i}`] === null || r[`k${i}`] === undefined ? null : String(r[`k${i}`])));
  const mk = (dir: 'next' | 'prev', r: Row) => encodeCursor(search, { dir, keys: keyValues(r), resourceType: search.resourceType, id: r.id });
  const page: SearchPage = { entries: [] };
  if (rows.length > 0) {
    const last = rows[rows.length - 1];
    const first = rows[0];
    if (forward ? more : cursor !== undefined) page.nextCursor = mk('next', last);
    if (forward ? cursor !== undefined : more) page.prevCursor = mk('prev', first);
  } else if (cursor) {
    // An empty page reached by a cursor: offer the way back.
    const back = encodeCursor(search, { dir: forward ? 'prev' : 'next', keys: cursor.keys, resourceType: cursor.resourceType, id: cursor.id });
    if (forward) page.prevCursor = back;
    else page.nextCursor = back;
  }

  const matches: SearchMatch[] = rows.map((r) => ({ resource: JSON.parse(r.content) as Resource, mode: 'match' }));
  page.entries = matches;
  if (search.include.length > 0 || search.revinclude.length > 0) {
    const included = await collectIncludes(
      q,
      search,
      rows.map((r, i) => ({ resource: matches[i].resource, tokens: r.tokens })),
    );
    for (const resource of included) page.entries.push({ resource, mode: 'include' });
  }

  if (search.total !== 'none' || count === 0) page.total = await countMatches(q, search);
  else if (!cursor && !more) page.total = rows.length;
  return page;
}
