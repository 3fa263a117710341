/**
 * Parsing of one search value for its parameter type (the shapes stored in SearchFilter.values),
 * shared by top-level parameters and composite components.
 */
import { Errors } from '../errors.js';
import { isR4ResourceType } from '../definitions.js';
import type { SearchParamType } from './types.js';
import { dateRange, decimalRange, escapeKeyPart, normalizeString } from './normalize.js';
import { normalizeReference } from './index-values.js';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
export const PREFIXES: readonly Prefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

/** A parsed search value (one of the OR-ed values of a filter). */
export type SearchValue =
  | { kind: 'missing'; missing: boolean }
  /** token / reference / uri (exact): any of these key suffixes (see extract.ts) */
  | { kind: 'keys'; keys: string[] }
  /** string (normalised unless exact), token :text (normalised), uri :above/:below */
  | { kind: 'string'; value: string }
  /** date: [lo, hi) epoch ms; number/quantity: exact value and precision range [lo, hi) as decimal strings */
  | { kind: 'date'; prefix: Prefix; lo: number; hi: number }
  | { kind: 'number'; prefix: Prefix; value: string; lo: string; hi: string }
  | { kind: 'quantity'; prefix: Prefix; value: string; lo: string; hi: string; system?: string; code?: string }
  | { kind: 'composite'; parts: SearchValue[] };

/** Splits at unescaped `sep` (`\` escapes); the parts keep their escapes. */
export function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
    } else if (c === sep) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Removes search escapes (`\,` `\$` `\|` `\\`). */
export function unescapeValue(s: string): string {
  return s.includes('\\') ? s.replace(/\\([\\,$|])/g, '$1') : s;
}

function splitPrefix(name: string, raw: string, accepted: boolean): { prefix: Prefix; rest: string } {
  const m = /^([a-z]{2})(.*)$/.exec(raw);
  if (m && (PREFIXES as readonly string[]).includes(m[1])) {
    if (!accepted) throw Errors.unsupportedPrefix({ name, prefix: m[1], accepted: 'none (prefixes apply to number, date and quantity parameters)' });
    return { prefix: m[1] as Prefix, rest: m[2] };
  }
  if (m && accepted && /^[+-]?\d/.test(m[2])) {
    throw Errors.unsupportedPrefix({ name, prefix: m[1], accepted: PREFIXES.join(', ') });
  }
  return { prefix: 'eq', rest: raw };
}

function tokenValueKeys(name: string, raw: string): string[] {
  const parts = splitEscaped(raw, '|');
  if (parts.length > 2) throw Errors.invalidSearchValue({ name, value: raw, expected: 'code, system|code, |code or system|' });
  if (parts.length === 1) {
    const code = unescapeValue(parts[0]);
    return [`=${escapeKeyPart(code)}`];
  }
  const system = unescapeValue(parts[0]);
  const code = unescapeValue(parts[1]);
  if (code === '') {
    if (system === '') throw Errors.invalidSearchValue({ name, value: raw, expected: 'code, system|code, |code or system|' });
    return [`@${escapeKeyPart(system)}`];
  }
  return [`=${escapeKeyPart(system)}|${escapeKeyPart(code)}`];
}

export interface ValueContext {
  /** The parameter as sent (for diagnostics). */
  name: string;
  type: SearchParamType;
  modifier?: string;
  /** Reference targets (reference parameters). */
  targets?: string[];
}

/** The normalised form of a string value; a value that is only whitespace would match everything. */
function normalizedText(name: string, raw: string, value: string): string {
  const n = normalizeString(value);
  if (n === '') throw Errors.invalidSearchValue({ name, value: raw, expected: 'some text other than whitespace' });
  return n;
}

/** Parses one (already comma-split, still escaped) value of a non-composite parameter. */
export function parseValue(ctx: ValueContext, raw: string): SearchValue {
  const { name, type, modifier } = ctx;
  if (modifier === 'missing') {
    if (raw !== 'true' && raw !== 'false') throw Errors.invalidSearchValue({ name, value: raw, expected: 'true or false' });
    return { kind: 'missing', missing: raw === 'true' };
  }
  switch (type) {
    case 'string': {
      const v = unescapeValue(raw);
      return { kind: 'string', value: modifier === 'exact' ? v : normalizedText(name, raw, v) };
    }
    case 'token': {
      if (modifier === 'text') return { kind: 'string', value: normalizedText(name, raw, unescapeValue(raw)) };
      if (modifier === 'of-type') {
        const parts = splitEscaped(raw, '|').map(unescapeValue);
        if (parts.length !== 3 || !parts[1] || !parts[2]) throw Errors.invalidSearchValue({ name, value: raw, expected: 'type-system|type-code|value' });
        return { kind: 'keys', keys: [`:of-type=${parts.map(escapeKeyPart).join('|')}`] };
      }
      return { kind: 'keys', keys: tokenValueKeys(name, raw) };
    }
    case 'reference': {
      if (modifier === 'identifier') return { kind: 'keys', keys: tokenValueKeys(name, raw).map((k) => `:identifier${k}`) };
      const v = unescapeValue(raw);
      if (v === '') throw Errors.invalidSearchValue({ name, value: raw, expected: 'a reference ([type]/[id], [id] or an absolute URL)' });
      const typeMod = modifier && isR4ResourceType(modifier) ? modifier : undefined;
      if (/^[a-z][a-z0-9+.-]*:/i.test(v)) {
        // absolute URL, urn, or canonical with |version
        return { kind: 'keys', keys: [`>${normalizeReference(v)}`] };
      }
      const n = normalizeReference(v);
      const slash = n.indexOf('/');
      if (slash > 0) {
        const t = n.slice(0, slash);
        if (!isR4ResourceType(t)) throw Errors.invalidSearchValue({ name, value: raw, expected: 'a reference [type]/[id] with an R4 resource type' });
        if (typeMod && t !== typeMod) return { kind: 'keys', keys: [] };
        return { kind: 'keys', keys: [`>${n}`] };
      }
      // A bare id: [type]/[id] for each target type, and (without a type modifier) the reference as
      // written, for references stored without a type (a relative canonical, a `#contained` reference).
      const types = typeMod ? [typeMod] : (ctx.targets ?? []);
      return { kind: 'keys', keys: [...types.map((t) => `>${t}/${n}`), ...(typeMod ? [] : [`>${n}`])] };
    }
    case 'uri': {
      const v = unescapeValue(raw);
      if (modifier === 'above' || modifier === 'below') return { kind: 'string', value: v };
      return { kind: 'keys', keys: [`=${escapeKeyPart(v)}`] };
    }
    case 'date': {
      const { prefix, rest } = splitPrefix(name, raw, true);
      // An unescaped '+' of a time zone arrives as a space after form decoding.
      const r = dateRange(/T[\d:.]+ \d{2}:\d{2}$/.test(rest) ? rest.replace(' ', '+') : rest);
      if (!r) throw Errors.invalidSearchValue({ name, value: raw, expected: 'a date [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.sss]][Z|(+|-)hh:mm]]]] with prefix eq, ne, gt, lt, ge, le, sa, eb or ap' });
      return { kind: 'date', prefix, lo: r[0], hi: r[1] };
    }
    case 'number': {
      const { prefix, rest } = splitPrefix(name, raw, true);
      const d = decimalRange(rest);
      if (!d) throw Errors.invalidSearchValue({ name, value: raw, expected: 'a decimal number with an optional prefix (eq, ne, gt, lt, ge, le, sa, eb, ap)' });
      return { kind: 'number', prefix, ...d };
    }
    case 'quantity': {
      const parts = splitEscaped(raw, '|');
      if (parts.length !== 1 && parts.length !== 3) {
        throw Errors.invalidSearchValue({ name, value: raw, expected: '[prefix]number, [prefix]number|system|code or [prefix]number||code' });
      }
      const { prefix, rest } = splitPrefix(name, parts[0], true);
      const d = decimalRange(rest);
      if (!d) throw Errors.invalidSearchValue({ name, value: raw, expected: '[prefix]number[|system|code] with a decimal number' });
      const system = parts.length === 3 ? unescapeValue(parts[1]) : '';
      const code = parts.length === 3 ? unescapeValue(parts[2]) : '';
      return { kind: 'quantity', prefix, ...d, ...(system ? { system } : {}), ...(code ? { code } : {}) };
    }
    default:
      throw Errors.invalidSearchValue({ name, value: raw, expected: `a parameter type Clarion can search (${type} is not supported)` });
  }
}
