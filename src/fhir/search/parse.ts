/**
 * Parses a search request (URL parameters in order) into a ParsedSearch: repeated parameters AND,
 * comma-separated values OR, `\` escapes `,` `$` `|` and `\`. Unknown parameters are errors under
 * `strict` and otherwise ignored and reported; unsupported modifiers/prefixes and unparseable values
 * are always errors (400, with a diagnostic naming the parameter, the value and what is accepted).
 */
import { Errors } from '../errors.js';
import { isR4ResourceType } from '../definitions.js';
import type { IncludeSpec, ParsedSearch, SearchFilter, SearchOptions, SortSpec } from './types.js';
import { getSearchParam, type SearchParamDef } from './params.js';
import { parseValue, splitEscaped, type SearchValue } from './values.js';

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;

const MODIFIERS: Record<string, string[]> = {
  string: ['missing', 'exact', 'contains'],
  token: ['missing', 'not', 'text', 'of-type'],
  reference: ['missing', 'identifier', '[type]'],
  uri: ['missing', 'above', 'below'],
  date: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  composite: ['missing'],
};

/** Result parameters handled elsewhere (REST layer) or not affecting the result set. */
const PASS_THROUGH = new Set(['_format', '_pretty']);
const UNSUPPORTED = new Set(['_text', '_content', '_query', '_filter', '_list', '_has', '_contained', '_containedType', '_type']);

function checkModifier(name: string, def: SearchParamDef, modifier: string | undefined): void {
  if (modifier === undefined) return;
  const accepted = MODIFIERS[def.type] ?? ['missing'];
  if (accepted.includes(modifier)) return;
  if (def.type === 'reference' && isR4ResourceType(modifier)) {
    if (def.targets.length === 0 || def.targets.includes(modifier) || def.targets.includes('Resource')) return;
    throw Errors.unsupportedModifier({ name, modifier, accepted: `a target type of '${def.code}' (${def.targets.join(', ')}), identifier or missing` });
  }
  throw Errors.unsupportedModifier({ name, modifier, accepted: accepted.join(', ') });
}

function parseValues(name: string, def: SearchParamDef, modifier: string | undefined, raw: string): SearchValue[] {
  const values: SearchValue[] = [];
  for (const part of splitEscaped(raw, ',')) {
    if (part === '') continue;
    if (def.type === 'composite' && modifier !== 'missing') {
      const comps = def.components ?? [];
      const pieces = splitEscaped(part, '$');
      if (pieces.length !== comps.length) {
        throw Errors.invalidSearchValue({ name, value: part, expected: `${comps.length} components separated by '$' (${comps.map((c) => c.code).join('$')})` });
      }
      values.push({ kind: 'composite', parts: pieces.map((p, i) => parseValue({ name, type: comps[i].type, targets: [] }, p)) });
    } else {
      values.push(parseValue({ name, type: def.type, modifier, targets: def.targets }, part));
    }
  }
  return values;
}

/** Parses `code[:modifier]` against a resource type. */
function splitName(name: string): { code: string; modifier?: string } {
  const colon = name.indexOf(':');
  return colon < 0 ? { code: name } : { code: name.slice(0, colon), modifier: name.slice(colon + 1) };
}

function parseFilter(resourceType: string, name: string, raw: string, strict: boolean, ignored: ParsedSearch['ignored']): SearchFilter | undefined {
  const dot = name.indexOf('.');
  const head = dot < 0 ? name : name.slice(0, dot);
  const { code, modifier } = splitName(head);
  const def = getSearchParam(resourceType, code);
  if (!def || !def.expression || def.type === 'special') {
    if (strict) throw Errors.unknownSearchParameter({ type: resourceType, name: code });
    ignored.push({ name, reason: def ? `search parameter '${code}' is not supported` : `unknown search parameter '${code}' for ${resourceType}` });
    return undefined;
  }
  if (dot >= 0) {
    // chained: ref[:Type].param[:modifier]
    if (def.type !== 'reference') throw Errors.invalidChain({ name, reason: `'${code}' is a ${def.type} parameter, only reference parameters can be chained` });
    const rest = name.slice(dot + 1);
    if (rest.includes('.')) throw Errors.invalidChain({ name, reason: 'only one level of chaining is supported' });
    let targets = def.targets;
    if (modifier) {
      if (!isR4ResourceType(modifier)) throw Errors.invalidChain({ name, reason: `':${modifier}' is not a resource type` });
      if (targets.length > 0 && !targets.includes(modifier) && !targets.includes('Resource')) {
        throw Errors.invalidChain({ name, reason: `${modifier} is not a target of '${code}' (${targets.join(', ')})` });
      }
      targets = [modifier];
    }
    const inner = splitName(rest);
    const usable = targets.filter((t) => getSearchParam(t, inner.code)?.expression);
    if (usable.length === 0) throw Errors.invalidChain({ name, reason: `no target type of '${code}' (${targets.join(', ')}) has a search parameter '${inner.code}'` });
    if (usable.length > 1 && !modifier) {
      const types = new Set(usable.map((t) => getSearchParam(t, inner.code)!.type));
      if (types.size > 1) throw Errors.invalidChain({ name, reason: `'${inner.code}' has different types on the targets of '${code}'; add a type modifier (${code}:[type].${inner.code})` });
    }
    const targetDef = getSearchParam(usable[0], inner.code)!;
    checkModifier(rest, targetDef, inner.modifier);
    const values = parseValues(rest, targetDef, inner.modifier, raw);
    if (values.length === 0) return undefined;
    return {
      code,
      type: 'reference',
      modifier,
      values: [],
      chain: { targetType: usable[0], targetTypes: usable, filter: { code: inner.code, type: targetDef.type, ...(inner.modifier ? { modifier: inner.modifier } : {}), values } },
    };
  }
  checkModifier(name, def, modifier);
  const values = parseValues(name, def, modifier, raw);
  if (values.length === 0) return undefined;
  return { code, type: def.type, ...(modifier ? { modifier } : {}), values };
}

function parseSort(resourceType: string, raw: string): SortSpec[] {
  const out: SortSpec[] = [];
  for (const part of raw.split(',')) {
    const item = part.trim();
    if (!item) continue;
    const descending = item.startsWith('-');
    const code = descending ? item.slice(1) : item;
    const def = getSearchParam(resourceType, code);
    if (!def || !def.expression) throw Errors.invalidSort({ value: raw, reason: `'${code}' is not a search parameter of ${resourceType}` });
    if (def.type === 'composite' || def.type === 'special') throw Errors.invalidSort({ value: raw, reason: `'${code}' is a ${def.type} parameter and cannot be sorted on` });
    out.push({ code, descending });
  }
  return out;
}

function parseInclude(value: string, iterate: boolean, rev: boolean, resourceType: string): IncludeSpec {
  if (value === '*') {
    if (rev) throw Errors.invalidInclude({ value, reason: '_revinclude=* is not supported; name the source: [type]:[parameter] or [type]:*' });
    return { sourceType: resourceType, param: '*', ...(iterate ? { iterate } : {}) };
  }
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3) throw Errors.invalidInclude({ value, reason: 'expected [source type]:[search parameter][:target type] or *' });
  const [sourceType, param, targetType] = parts;
  if (!isR4ResourceType(sourceType)) throw Errors.invalidInclude({ value, reason: `'${sourceType}' is not an R4 resource type` });
  if (param !== '*') {
    const def = getSearchParam(sourceType, param);
    if (!def || def.type !== 'reference' || !def.expression) throw Errors.invalidInclude({ value, reason: `'${param}' is not a reference search parameter of ${sourceType}` });
  }
  if (targetType !== undefined && !isR4ResourceType(targetType)) throw Errors.invalidInclude({ value, reason: `'${targetType}' is not an R4 resource type` });
  return { sourceType, param, ...(targetType ? { targetType } : {}), ...(iterate ? { iterate } : {}) };
}

function oneOf<T extends string>(name: string, raw: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(raw)) return raw as T;
  throw Errors.invalidSearchValue({ name, value: raw, expected: `one of ${allowed.join(', ')}` });
}

/** Parses search parameters (in URL order) for a resource type. */
export function parseSearchRequest(resourceType: string, params: [string, string][], options: SearchOptions): ParsedSearch {
  if (!isR4ResourceType(resourceType)) throw Errors.unknownResourceType({ type: resourceType });
  const maxCount = options.maxCount ?? MAX_COUNT;
  const out: ParsedSearch = {
    resourceType,
    filters: [],
    count: Math.min(options.defaultCount ?? DEFAULT_COUNT, maxCount),
    sort: [],
    include: [],
    revinclude: [],
    total: 'none',
    ignored: [],
  };
  for (const [name, value] of params) {
    // PostgreSQL text cannot hold NUL: refuse it here rather than fail in SQL.
    if (name.includes('\u0000') || value.includes('\u0000')) throw Errors.invalidParameter({ name: name.split('\u0000').join('\\0'), reason: 'contains a NUL character' });
    const base = splitName(name);
    switch (base.code) {
      case '_count': {
        if (!/^\d+$/.test(value)) throw Errors.invalidSearchValue({ name, value, expected: 'a non-negative integer' });
        out.count = Math.min(Number(value), maxCount);
        continue;
      }
      case '_sort':
        out.sort = parseSort(resourceType, value);
        continue;
      case '_total':
        out.total = oneOf(name, value, ['none', 'estimate', 'accurate'] as const);
        continue;
      case '_summary':
        out.summary = oneOf(name, value, ['true', 'text', 'data', 'count', 'false'] as const);
        continue;
      case '_elements':
        out.elements = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
        for (const e of out.elements) {
          if (!/^[A-Za-z][A-Za-z0-9_]*(\[x\])?$/.test(e)) throw Errors.invalidSearchValue({ name, value: e, expected: 'top-level element names separated by commas' });
        }
        continue;
      case '_cursor':
        out.cursor = value;
        continue;
      case '_include':
      case '_revinclude': {
        const rev = base.code === '_revinclude';
        if (base.modifier && base.modifier !== 'iterate' && base.modifier !== 'recurse') {
          throw Errors.unsupportedModifier({ name, modifier: base.modifier, accepted: 'iterate' });
        }
        const spec = parseInclude(value, base.modifier !== undefined, rev, resourceType);
        (rev ? out.revinclude : out.include).push(spec);
        continue;
      }
      default:
        break;
    }
    if (PASS_THROUGH.has(base.code)) continue;
    if (UNSUPPORTED.has(base.code)) {
      if (options.strict) throw Errors.unknownSearchParameter({ type: resourceType, name: base.code });
      out.ignored.push({ name, reason: `'${base.code}' is not supported` });
      continue;
    }
    if (value === '') {
      out.ignored.push({ name, reason: 'empty value' });
      continue;
    }
    const f = parseFilter(resourceType, name, value, options.strict, out.ignored);
    if (f) out.filters.push(f);
  }
  if (out.summary === 'count') out.total = 'accurate';
  return out;
}
