/**
 * Converts the typed values of one search parameter (FHIRPath results) into its index entry: the
 * exact-match keys (without the parameter prefix) and the JSON data stored under `idx[code]`.
 * The formats are documented at the top of extract.ts.
 */
import type { SearchParamType } from './types.js';
import type { TypedValue } from './typed-value.js';
import { RANGE_MAX, RANGE_MIN, dateRange, escapeKeyPart, normalizeString, tokenKeys } from './normalize.js';

/** The data of one parameter (or one composite component) in `idx`. */
export interface ParamData {
  /** string: normalised values / exact values */
  n?: string[];
  e?: string[];
  /** token: codes (for sorting) / normalised display texts (for :text) */
  c?: string[];
  t?: string[];
  /** reference: normalised references (`Patient/1`, absolute URLs, canonical URLs) */
  r?: string[];
  /** uri: values */
  u?: string[];
  /** date: [lo, hi] epoch ms, both inclusive */
  d?: [number, number][];
  /** number: [lo, hi] (a point is [v, v]) */
  v?: [number, number][];
  /** quantity: [lo, hi, system, code, unit] */
  q?: [number, number, string | null, string | null, string | null][];
  /** composite (top level only): one entry per element, one ParamData (with keys `k`) per component */
  k?: unknown;
}

export interface ParamIndex {
  /** Exact-match keys relative to the parameter: `=code`, `=sys|code`, `@sys`, `>Patient/1`, `:identifier=…`. */
  keys: string[];
  data: ParamData;
}

type Obj = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function pushUnique<T>(arr: T[] | undefined, v: T): T[] {
  const a = arr ?? [];
  if (!a.includes(v)) a.push(v);
  return a;
}

// ---------------------------------------------------------------------------------------------------
// token

function addCoding(c: Obj, keys: string[], d: ParamData): void {
  const code = str(c.code);
  tokenKeys(str(c.system), code, keys);
  if (code) d.c = pushUnique(d.c, code);
  const display = str(c.display);
  if (display) d.t = pushUnique(d.t, normalizeString(display));
}

function tokenValue(v: TypedValue, keys: string[], d: ParamData): void {
  const x = v.data;
  if (typeof x === 'boolean' || typeof x === 'number') {
    tokenKeys(undefined, String(x), keys);
    d.c = pushUnique(d.c, String(x));
    return;
  }
  if (typeof x === 'string') {
    tokenKeys(undefined, x, keys);
    d.c = pushUnique(d.c, x);
    return;
  }
  if (typeof x !== 'object' || x === null) return;
  const o = x as Obj;
  switch (v.type) {
    case 'Coding':
      addCoding(o, keys, d);
      return;
    case 'Identifier': {
      const value = str(o.value);
      tokenKeys(str(o.system), value, keys);
      if (value) d.c = pushUnique(d.c, value);
      const type = o.type as Obj | undefined;
      if (type && typeof type === 'object') {
        const text = str(type.text);
        if (text) d.t = pushUnique(d.t, normalizeString(text));
        if (value && Array.isArray(type.coding)) {
          for (const c of type.coding as Obj[]) {
            if (c && str(c.code)) keys.push(`:of-type=${escapeKeyPart(str(c.system) ?? '')}|${escapeKeyPart(str(c.code)!)}|${escapeKeyPart(value)}`);
          }
        }
      }
      return;
    }
    case 'ContactPoint': {
      const value = str(o.value);
      tokenKeys(str(o.system), value, keys);
      if (value) d.c = pushUnique(d.c, value);
      return;
    }
    default: {
      // CodeableConcept (or an untyped object that looks like one / like a Coding)
      if (Array.isArray(o.coding) || 'text' in o) {
        for (const c of (o.coding as Obj[] | undefined) ?? []) if (c && typeof c === 'object') addCoding(c, keys, d);
        const text = str(o.text);
        if (text) d.t = pushUnique(d.t, normalizeString(text));
      } else if ('code' in o || 'system' in o) {
        addCoding(o, keys, d);
      } else if ('value' in o) {
        tokenKeys(str(o.system), str(o.value), keys);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// string

const NAME_PARTS = ['text', 'family', 'given', 'prefix', 'suffix'];
const ADDRESS_PARTS = ['text', 'line', 'city', 'district', 'state', 'postalCode', 'country'];

function addString(s: string, d: ParamData): void {
  if (s === '') return;
  d.e = pushUnique(d.e, s);
  d.n = pushUnique(d.n, normalizeString(s));
}

function stringValue(v: TypedValue, d: ParamData): void {
  const x = v.data;
  if (typeof x === 'string') return addString(x, d);
  if (typeof x !== 'object' || x === null) return;
  const o = x as Obj;
  const parts =
    v.type === 'HumanName' ? NAME_PARTS : v.type === 'Address' ? ADDRESS_PARTS : 'family' in o || 'given' in o ? NAME_PARTS : 'city' in o || 'line' in o ? ADDRESS_PARTS : undefined;
  if (parts) {
    for (const p of parts) {
      const val = o[p];
      if (typeof val === 'string') addString(val, d);
      else if (Array.isArray(val)) for (const s of val) if (typeof s === 'string') addString(s, d);
    }
    return;
  }
  if (typeof o.text === 'string') addString(o.text, d);
  if (Array.isArray(o.coding)) for (const c of o.coding as Obj[]) if (c && typeof c.display === 'string') addString(c.display, d);
  if (typeof o.display === 'string') addString(o.display, d);
  if (typeof o.value === 'string') addString(o.value, d);
}

// ---------------------------------------------------------------------------------------------------
// date

function addDate(lo: number, hi: number, d: ParamData): void {
  (d.d ??= []).push([lo, hi]);
}

function dateValue(v: TypedValue, d: ParamData): void {
  const x = v.data;
  if (typeof x === 'string') {
    const r = dateRange(x);
    if (r) addDate(r[0], r[1] - 1, d);
    return;
  }
  if (typeof x !== 'object' || x === null) return;
  const o = x as Obj;
  if ('start' in o || 'end' in o) {
    // Period
    const s = typeof o.start === 'string' ? dateRange(o.start) : undefined;
    const e = typeof o.end === 'string' ? dateRange(o.end) : undefined;
    if (s || e) addDate(s ? s[0] : RANGE_MIN, e ? e[1] - 1 : RANGE_MAX, d);
    return;
  }
  if (Array.isArray(o.event) || 'repeat' in o) {
    // Timing: its events, and the bounds of its repeat
    for (const ev of (o.event as unknown[] | undefined) ?? []) {
      const r = typeof ev === 'string' ? dateRange(ev) : undefined;
      if (r) addDate(r[0], r[1] - 1, d);
    }
    const bp = (o.repeat as Obj | undefined)?.boundsPeriod as Obj | undefined;
    if (bp) dateValue({ type: 'Period', data: bp, path: undefined }, d);
  }
}

// ---------------------------------------------------------------------------------------------------
// number / quantity

function numberValue(v: TypedValue, d: ParamData): void {
  const x = v.data;
  if (typeof x === 'number' && Number.isFinite(x)) {
    (d.v ??= []).push([x, x]);
  } else if (typeof x === 'object' && x !== null) {
    const o = x as Obj;
    if ('low' in o || 'high' in o) {
      const lo = num((o.low as Obj | undefined)?.value);
      const hi = num((o.high as Obj | undefined)?.value);
      if (lo !== undefined || hi !== undefined) (d.v ??= []).push([lo ?? RANGE_MIN, hi ?? RANGE_MAX]);
    } else {
      const val = num(o.value);
      if (val !== undefined) (d.v ??= []).push([val, val]);
    }
  }
}

function quantityValue(v: TypedValue, d: ParamData): void {
  const x = v.data;
  if (typeof x === 'number' && Number.isFinite(x)) {
    (d.q ??= []).push([x, x, null, null, null]);
    return;
  }
  if (typeof x !== 'object' || x === null) return;
  const o = x as Obj;
  if (v.type === 'SampledData') return;
  if ('low' in o || 'high' in o) {
    const low = o.low as Obj | undefined;
    const high = o.high as Obj | undefined;
    const lo = num(low?.value);
    const hi = num(high?.value);
    const u = low ?? high ?? {};
    if (lo !== undefined || hi !== undefined) {
      (d.q ??= []).push([lo ?? RANGE_MIN, hi ?? RANGE_MAX, str(u.system) ?? null, str(u.code) ?? null, str(u.unit) ?? null]);
    }
    return;
  }
  const val = num(o.value);
  if (val === undefined) return;
  if (v.type === 'Money' || ('currency' in o && !('code' in o))) {
    (d.q ??= []).push([val, val, 'urn:iso:std:iso:4217', str(o.currency) ?? null, null]);
    return;
  }
  (d.q ??= []).push([val, val, str(o.system) ?? null, str(o.code) ?? null, str(o.unit) ?? null]);
}

// ---------------------------------------------------------------------------------------------------
// reference / uri

/** Normalises a reference string: `Patient/1/_history/2` → `Patient/1`; absolute URLs are kept. */
export function normalizeReference(ref: string): string {
  const h = ref.indexOf('/_history/');
  return h > 0 ? ref.slice(0, h) : ref;
}

function addRef(ref: string, keys: string[], d: ParamData): void {
  keys.push(`>${ref}`);
  d.r = pushUnique(d.r, ref);
}

function referenceValue(v: TypedValue, keys: string[], d: ParamData): void {
  const x = v.data;
  if (typeof x === 'string') {
    // canonical / uri used as a reference
    addRef(x, keys, d);
    const bar = x.indexOf('|');
    if (bar > 0) addRef(x.slice(0, bar), keys, d);
    return;
  }
  if (typeof x !== 'object' || x === null) return;
  const o = x as Obj;
  const ref = str(o.reference);
  if (ref) {
    const type = str(o.type);
    const n = normalizeReference(ref);
    addRef(type && !n.includes('/') && !n.startsWith('#') && !n.includes(':') ? `${type}/${n}` : n, keys, d);
  }
  const ident = o.identifier as Obj | undefined;
  if (ident && typeof ident === 'object') {
    const idKeys: string[] = [];
    tokenKeys(str(ident.system), str(ident.value), idKeys);
    for (const k of idKeys) keys.push(`:identifier${k}`);
  }
}

function uriValue(v: TypedValue, keys: string[], d: ParamData): void {
  const x = v.data;
  if (typeof x !== 'string' || x === '') return;
  if (!d.u?.includes(x)) {
    d.u = pushUnique(d.u, x);
    keys.push(`=${escapeKeyPart(x)}`);
  }
}

/** Builds the index entry of one parameter (or composite component) from its typed values. */
export function indexValues(type: SearchParamType, values: TypedValue[]): ParamIndex {
  const keys: string[] = [];
  const data: ParamData = {};
  for (const v of values) {
    switch (type) {
      case 'token':
        tokenValue(v, keys, data);
        break;
      case 'string':
        stringValue(v, data);
        break;
      case 'date':
        dateValue(v, data);
        break;
      case 'number':
        numberValue(v, data);
        break;
      case 'quantity':
        quantityValue(v, data);
        break;
      case 'reference':
        referenceValue(v, keys, data);
        break;
      case 'uri':
        uriValue(v, keys, data);
        break;
      default:
        break;
    }
  }
  return { keys: keys.length > 1 ? [...new Set(keys)] : keys, data };
}

/** True when the entry holds anything (the parameter is then present for `:missing`). */
export function hasValues(p: ParamIndex): boolean {
  if (p.keys.length > 0) return true;
  for (const k in p.data) if ((p.data as Record<string, unknown[]>)[k]?.length) return true;
  return false;
}
