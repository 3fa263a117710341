/**
 * Search filters as a small condition tree over the normalised index (extract.ts). Both the SQL
 * compiler (sql-where.ts) and in-memory matching (match.ts) interpret this one tree, so prefix,
 * precision-range and modifier semantics are defined exactly once, here.
 */
import type { SearchFilter } from './types.js';
import { getSearchParam } from './params.js';
import type { Prefix, SearchValue } from './values.js';

/** Where a value lives: a top-level parameter (`idx[code]`, tokens `code…`) or a composite component. */
export type Src = { code: string } | { comp: number };

/** A comparison on the target range [lo, hi] (both inclusive) of date/number/quantity values. */
export type Pred = { and: Pred[] } | { or: Pred[] } | { f: 'lo' | 'hi'; op: '<' | '<=' | '>' | '>='; v: number | string };

export type Cond =
  | { k: 'true' }
  | { k: 'false' }
  | { k: 'and'; cs: Cond[] }
  | { k: 'or'; cs: Cond[] }
  | { k: 'not'; c: Cond }
  /** the parameter has a value */
  | { k: 'present'; code: string }
  /** any of the key suffixes (tokens for top-level, component `k` for composite) */
  | { k: 'keys'; src: Src; keys: string[] }
  /** string match on n (prefix/contains), e (exact) or t (token :text, prefix) */
  | { k: 'str'; src: Src; mode: 'prefix' | 'contains' | 'exact' | 'text'; value: string }
  /** uri :above (stored uri is a prefix of value) / :below (value is a prefix of stored uri) */
  | { k: 'uri'; src: Src; mode: 'above' | 'below'; value: string }
  /** range comparison on d (date), v (number) or q (quantity, optionally with system/code-or-unit) */
  | { k: 'range'; src: Src; field: 'd' | 'v' | 'q'; pred: Pred; system?: string; code?: string }
  /** one composite element satisfies every component condition */
  | { k: 'composite'; code: string; parts: Cond[] }
  /** the reference parameter `code` points at a resource of `target` satisfying `cond` */
  | { k: 'chain'; code: string; target: string; cond: Cond };

const and = (...ps: Pred[]): Pred => ({ and: ps });
const or = (...ps: Pred[]): Pred => ({ or: ps });
const c = (f: 'lo' | 'hi', op: '<' | '<=' | '>' | '>=', v: number | string): Pred => ({ f, op, v });

/** The inverse of a predicate (for `ne`). */
function negate(p: Pred): Pred {
  if ('and' in p) return { or: p.and.map(negate) };
  if ('or' in p) return { and: p.or.map(negate) };
  const inv = { '<': '>=', '<=': '>', '>': '<=', '>=': '<' } as const;
  return { f: p.f, op: inv[p.op], v: p.v };
}

/**
 * Range semantics (R4 search, "prefixes"): search range [slo, shi) (the implicit precision of the
 * value), target range [lo, hi]. eq: the search range contains the target; gt/lt: the target extends
 * beyond the search range; sa/eb: the target lies entirely after/before it; ap: the ranges overlap once
 * the search range is widened by 10% of the value (dates: of the distance to now, at least a day).
 */
function datePred(prefix: Prefix, slo: number, shi: number, now: number): Pred {
  const eq = and(c('lo', '>=', slo), c('hi', '<', shi));
  switch (prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return negate(eq);
    case 'gt':
      return c('hi', '>=', shi);
    case 'lt':
      return c('lo', '<', slo);
    case 'ge':
      return or(c('hi', '>=', shi), eq);
    case 'le':
      return or(c('lo', '<', slo), eq);
    case 'sa':
      return c('lo', '>=', shi);
    case 'eb':
      return c('hi', '<', slo);
    case 'ap': {
      const d = Math.max(Math.abs(now - slo) * 0.1, 86_400_000);
      return and(c('lo', '<', shi + d), c('hi', '>=', slo - d));
    }
  }
}

/**
 * Numbers and quantities: eq/ne/ap use the precision range [lo, hi) of the search value (`100` →
 * [99.5, 100.5)); gt/lt/ge/le/sa/eb compare with the value itself.
 */
function numberPred(prefix: Prefix, value: string, lo: string, hi: string): Pred {
  const eq = and(c('lo', '>=', lo), c('hi', '<', hi));
  switch (prefix) {
    case 'eq':
      return eq;
    case 'ne':
      return negate(eq);
    case 'gt':
      return c('hi', '>', value);
    case 'lt':
      return c('lo', '<', value);
    case 'ge':
      return c('hi', '>=', value);
    case 'le':
      return c('lo', '<=', value);
    case 'sa':
      return c('lo', '>', value);
    case 'eb':
      return c('hi', '<', value);
    case 'ap': {
      const v = Number(value);
      const d = Math.abs(v) * 0.1;
      return and(c('lo', '<=', String(v + d)), c('hi', '>=', String(v - d)));
    }
  }
}

function valueCond(src: Src, type: string, modifier: string | undefined, v: SearchValue, now: number): Cond {
  switch (v.kind) {
    case 'missing':
      return { k: 'false' }; // handled by the caller (top level only)
    case 'keys':
      return v.keys.length === 0 ? { k: 'false' } : { k: 'keys', src, keys: v.keys };
    case 'string':
      if (type === 'token') return { k: 'str', src, mode: 'text', value: v.value };
      if (type === 'uri') return { k: 'uri', src, mode: modifier === 'above' ? 'above' : 'below', value: v.value };
      return { k: 'str', src, mode: modifier === 'exact' ? 'exact' : modifier === 'contains' ? 'contains' : 'prefix', value: v.value };
    case 'date':
      return { k: 'range', src, field: 'd', pred: datePred(v.prefix, v.lo, v.hi, now) };
    case 'number':
      return { k: 'range', src, field: 'v', pred: numberPred(v.prefix, v.value, v.lo, v.hi) };
    case 'quantity':
      return { k: 'range', src, field: 'q', pred: numberPred(v.prefix, v.value, v.lo, v.hi), ...(v.system ? { system: v.system } : {}), ...(v.code ? { code: v.code } : {}) };
    case 'composite':
      return { k: 'false' }; // handled by the caller
  }
}

function orOf(cs: Cond[]): Cond {
  const live = cs.filter((x) => x.k !== 'false');
  if (live.length === 0) return { k: 'false' };
  return live.length === 1 ? live[0] : { k: 'or', cs: live };
}

/** The condition of one filter (its values OR-ed) on resources of `resourceType`. */
export function filterCondition(resourceType: string, f: SearchFilter, now = Date.now()): Cond {
  if (f.chain) {
    const inner = f.chain.filter;
    const targets = f.chain.targetTypes ?? [f.chain.targetType];
    return orOf(targets.map((t) => ({ k: 'chain', code: f.code, target: t, cond: filterCondition(t, inner, now) })));
  }
  const values = f.values as SearchValue[];
  const src: Src = { code: f.code };
  if (f.modifier === 'missing') {
    return orOf(values.map((v) => (v.kind === 'missing' && v.missing ? { k: 'not', c: { k: 'present', code: f.code } } : { k: 'present', code: f.code })));
  }
  if (f.type === 'composite') {
    const def = getSearchParam(resourceType, f.code);
    const comps = def?.components ?? [];
    return orOf(
      values.map((v) =>
        v.kind === 'composite'
          ? { k: 'composite', code: f.code, parts: v.parts.map((p, i) => valueCond({ comp: i }, comps[i]?.type ?? 'token', undefined, p, now)) }
          : { k: 'false' },
      ),
    );
  }
  if (f.type === 'token' && f.modifier === 'not') {
    // :not — resources without any of the codes (including those without a value)
    return { k: 'not', c: orOf(values.map((v) => valueCond(src, f.type, undefined, v, now))) };
  }
  // All exact-key values of a filter merge into one `tokens && ARRAY[...]`.
  const keys: string[] = [];
  const others: Cond[] = [];
  for (const v of values) {
    const cond = valueCond(src, f.type, f.modifier, v, now);
    if (cond.k === 'keys') keys.push(...cond.keys);
    else others.push(cond);
  }
  return orOf([...(keys.length > 0 ? [{ k: 'keys', src, keys } as Cond] : []), ...others]);
}

/** All filters AND-ed. */
export function searchCondition(resourceType: string, filters: SearchFilter[], now = Date.now()): Cond {
  const cs = filters.map((f) => filterCondition(resourceType, f, now));
  if (cs.some((x) => x.k === 'false')) return { k: 'false' };
  return cs.length === 0 ? { k: 'true' } : cs.length === 1 ? cs[0] : { k: 'and', cs };
}
