/**
 * In-memory search matching (e.g. subscription topics' queryCriteria): evaluates the same condition
 * tree as SQL (conditions.ts) on the same normalised index (extract.ts), so both agree.
 *
 * Chained parameters need the referenced resources: pass `options.resolve` (synchronous, `Type/id` →
 * resource or undefined). Without a resolver a chained filter throws Errors.invalidChain.
 */
import type { Resource } from 'fhir/r4.js';
import { Errors } from '../errors.js';
import type { ParsedSearch, SearchFilter, SearchIndex } from './types.js';
import { extractSearchIndex } from './extract.js';
import { searchCondition, type Cond, type Pred, type Src } from './conditions.js';
import type { ParamData } from './index-values.js';

export interface MatchOptions {
  /** Resolves a relative reference (`Patient/1`) for chained parameters. */
  resolve?: (reference: string) => Resource | undefined;
  /** A precomputed index of the resource (saves extracting it again). */
  index?: SearchIndex;
  /** "now" for `ap` on dates (defaults to the current time). */
  now?: number;
}

interface Ctx {
  idx: Record<string, unknown>;
  tokens: ReadonlySet<string>;
  resourceType: string;
  options: MatchOptions;
}

function data(ctx: Ctx, src: Src, el: ParamData[] | undefined): ParamData | undefined {
  if ('code' in src) return ctx.idx[src.code] as ParamData | undefined;
  return el?.[src.comp];
}

function predHolds(p: Pred, lo: number, hi: number): boolean {
  if ('and' in p) return p.and.every((x) => predHolds(x, lo, hi));
  if ('or' in p) return p.or.some((x) => predHolds(x, lo, hi));
  const a = p.f === 'lo' ? lo : hi;
  const b = Number(p.v);
  switch (p.op) {
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
  }
}

function evalCond(c: Cond, ctx: Ctx, el?: ParamData[]): boolean {
  switch (c.k) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'and':
      return c.cs.every((x) => evalCond(x, ctx, el));
    case 'or':
      return c.cs.some((x) => evalCond(x, ctx, el));
    case 'not':
      return !evalCond(c.c, ctx, el);
    case 'present':
      return c.code in ctx.idx;
    case 'keys': {
      if ('code' in c.src) {
        const code = c.src.code;
        return c.keys.some((k) => ctx.tokens.has(code + k));
      }
      const keys = (data(ctx, c.src, el) as { k?: string[] } | undefined)?.k ?? [];
      return c.keys.some((k) => keys.includes(k));
    }
    case 'str': {
      const d = data(ctx, c.src, el);
      const list = c.mode === 'exact' ? d?.e : c.mode === 'text' ? d?.t : d?.n;
      if (!list) return false;
      if (c.mode === 'exact') return list.includes(c.value);
      if (c.mode === 'contains') return list.some((x) => x.includes(c.value));
      return list.some((x) => x.startsWith(c.value));
    }
    case 'uri': {
      const list = data(ctx, c.src, el)?.u ?? [];
      return c.mode === 'below' ? list.some((x) => x.startsWith(c.value)) : list.some((x) => c.value.startsWith(x));
    }
    case 'range': {
      const d = data(ctx, c.src, el);
      if (c.field === 'q') {
        return (d?.q ?? []).some(([lo, hi, system, code, unit]) => {
          if (c.system !== undefined && system !== c.system) return false;
          if (c.code !== undefined && !(code === c.code || (c.system === undefined && unit === c.code))) return false;
          return predHolds(c.pred, lo, hi);
        });
      }
      const list = c.field === 'd' ? d?.d : d?.v;
      return (list ?? []).some(([lo, hi]) => predHolds(c.pred, lo, hi));
    }
    case 'composite': {
      const entries = ((ctx.idx[c.code] as ParamData | undefined)?.k ?? []) as ParamData[][];
      return entries.some((e) => c.parts.every((p) => evalCond(p, ctx, e)));
    }
    case 'chain': {
      const resolve = ctx.options.resolve;
      if (!resolve) throw Errors.invalidChain({ name: c.code, reason: 'chained parameters cannot be evaluated here (no resolver for referenced resources)' });
      const refs = (ctx.idx[c.code] as ParamData | undefined)?.r ?? [];
      for (const ref of refs) {
        if (!ref.startsWith(`${c.target}/`)) continue;
        const target = resolve(ref);
        if (!target || target.resourceType !== c.target) continue;
        const ti = extractSearchIndex(target);
        const tctx: Ctx = { idx: ti.idx, tokens: tokenSet(ti.tokens), resourceType: c.target, options: ctx.options };
        if (evalCond(c.cond, tctx)) return true;
      }
      return false;
    }
  }
}

/** Whether a resource matches a search (or a list of AND-ed filters) — the same semantics as SQL. */
export function matchesSearch(resource: Resource, search: ParsedSearch | SearchFilter[], options: MatchOptions = {}): boolean {
  const filters = Array.isArray(search) ? search : search.filters;
  if (!Array.isArray(search) && search.resourceType !== resource.resourceType) return false;
  const index = options.index ?? extractSearchIndex(resource);
  const ctx: Ctx = { idx: index.idx, tokens: tokenSet(index.tokens), resourceType: resource.resourceType, options };
  return evalCond(searchCondition(resource.resourceType, filters, options.now), ctx);
}

/**
 * An index's tokens as a set, made once per index: a change is matched against a topic's criteria and
 * many subscriptions' filters with the same index (the store's, from RecentSearchIndexes).
 */
const tokenSets = new WeakMap<readonly string[], ReadonlySet<string>>();
function tokenSet(tokens: readonly string[]): ReadonlySet<string> {
  let set = tokenSets.get(tokens);
  if (!set) {
    set = new Set(tokens);
    tokenSets.set(tokens, set);
  }
  return set;
}
