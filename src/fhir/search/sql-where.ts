/**
 * Compiles a search condition tree (conditions.ts) to a PostgreSQL boolean expression over the
 * `resources` table (one dialect: PostgreSQL 15 / PGlite). User values are always bind parameters.
 * Exact keys use the GIN index on `tokens` (`&&`); strings, dates, numbers and quantities use jsonb
 * functions over `idx`. `_lastUpdated` ranges use the `last_updated` column.
 */
import type { Cond, Pred, Src } from './conditions.js';

/** Collects bind parameters; `add` returns the placeholder (`$n`). */
export class SqlParams {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

interface Scope {
  /** table alias of the resource row */
  alias: string;
  /** SQL of the current composite element (jsonb array of components), if inside a composite */
  el?: string;
  depth: number;
}

function dataExpr(src: Src, scope: Scope, p: SqlParams): string {
  if ('code' in src) return `${scope.alias}.idx->${p.add(src.code)}`;
  return `(${scope.el}->${Number(src.comp)})`;
}

function predSql(pred: Pred, lo: string, hi: string, p: SqlParams): string {
  if ('and' in pred) return `(${pred.and.map((x) => predSql(x, lo, hi, p)).join(' AND ')})`;
  if ('or' in pred) return `(${pred.or.map((x) => predSql(x, lo, hi, p)).join(' OR ')})`;
  return `${pred.f === 'lo' ? lo : hi} ${pred.op} ${p.add(String(pred.v))}::numeric`;
}

/**
 * The `tokens` column as stored: without the `_id` keys, which the primary key answers (idSql). Each
 * GIN entry costs PostgreSQL a posting-list insert per write, and an id's two keys (`_id=x`, `_id=|x`)
 * are unique, so the costliest kind: they were about a third of the index's insert time.
 */
export function storedTokens(tokens: readonly string[]): string[] {
  return tokens.filter((t) => !t.startsWith('_id=') && !t.startsWith('_id@'));
}

/**
 * `_id` keys (extract.ts: `=ID`, and `=|ID` as a code without a system) as a primary-key lookup. A key
 * with a system, or `@SYSTEM`, can match no id (ids have none; `|` cannot occur in an id).
 */
function idSql(keys: readonly string[], p: SqlParams, scope: Scope): string {
  const ids: string[] = [];
  for (const k of keys) {
    if (!k.startsWith('=')) continue;
    const v = k.startsWith('=|') ? k.slice(2) : k.slice(1);
    if (!v.includes('|') && !v.includes('\\')) ids.push(v);
  }
  return ids.length === 0 ? 'FALSE' : `${scope.alias}.id = ANY(${p.add(ids)}::text[])`;
}

/** SQL for a condition, with the resource row as `scope.alias`. */
export function condSql(c: Cond, p: SqlParams, scope: Scope): string {
  switch (c.k) {
    case 'true':
      return 'TRUE';
    case 'false':
      return 'FALSE';
    case 'and':
      return `(${c.cs.map((x) => condSql(x, p, scope)).join(' AND ')})`;
    case 'or':
      return `(${c.cs.map((x) => condSql(x, p, scope)).join(' OR ')})`;
    case 'not':
      return `NOT ${condSql(c.c, p, scope)}`;
    case 'present':
      return `(${scope.alias}.idx ? ${p.add(c.code)})`;
    case 'keys': {
      if ('code' in c.src && c.src.code === '_id') return idSql(c.keys, p, scope);
      if ('code' in c.src) {
        const code = c.src.code;
        const keys = c.keys.map((k) => code + k);
        return keys.length === 1
          ? `${scope.alias}.tokens @> ${p.add(keys)}::text[]`
          : `${scope.alias}.tokens && ${p.add(keys)}::text[]`;
      }
      return `(coalesce(${dataExpr(c.src, scope, p)}->'k', '[]'::jsonb) ?| ${p.add(c.keys)}::text[])`;
    }
    case 'str': {
      const d = dataExpr(c.src, scope, p);
      if (c.mode === 'exact') return `coalesce(${d}->'e' ? ${p.add(c.value)}, false)`;
      const field = c.mode === 'text' ? 't' : 'n';
      const test = c.mode === 'contains' ? `strpos(x, ${p.add(c.value)}) > 0` : `starts_with(x, ${p.add(c.value)})`;
      return `EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(${d}->'${field}', '[]'::jsonb)) x WHERE ${test})`;
    }
    case 'uri': {
      const d = dataExpr(c.src, scope, p);
      const v = p.add(c.value);
      const test = c.mode === 'below' ? `starts_with(x, ${v})` : `starts_with(${v}, x)`;
      return `EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce(${d}->'u', '[]'::jsonb)) x WHERE ${test})`;
    }
    case 'range': {
      if ('code' in c.src && c.src.code === '_lastUpdated') {
        const t = `floor(extract(epoch FROM ${scope.alias}.last_updated) * 1000)`;
        return predSql(c.pred, t, t, p);
      }
      const d = dataExpr(c.src, scope, p);
      const e = `e${scope.depth}`;
      const conds = [predSql(c.pred, `(${e}->>0)::numeric`, `(${e}->>1)::numeric`, p)];
      if (c.field === 'q') {
        if (c.system !== undefined) conds.push(`${e}->>2 = ${p.add(c.system)}`);
        if (c.code !== undefined) {
          const code = p.add(c.code);
          conds.push(c.system !== undefined ? `${e}->>3 = ${code}` : `(${e}->>3 = ${code} OR ${e}->>4 = ${code})`);
        }
      }
      return `EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(${d}->'${c.field}', '[]'::jsonb)) ${e} WHERE ${conds.join(' AND ')})`;
    }
    case 'composite': {
      const el = `el${scope.depth}`;
      const inner: Scope = { ...scope, el, depth: scope.depth + 1 };
      return `EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(${scope.alias}.idx->${p.add(c.code)}->'k', '[]'::jsonb)) ${el} WHERE ${c.parts
        .map((x) => condSql(x, p, inner))
        .join(' AND ')})`;
    }
    case 'chain': {
      const t = `c${scope.depth}`;
      const inner: Scope = { alias: t, depth: scope.depth + 1 };
      const prefix = p.add(`${c.code}>${c.target}/`);
      return `${scope.alias}.tokens && ARRAY(SELECT ${prefix}::text || ${t}.id FROM resources ${t} WHERE ${t}.resource_type = ${p.add(c.target)} AND ${t}.deleted = false AND ${condSql(c.cond, p, inner)})`;
    }
  }
}
