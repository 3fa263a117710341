/**
 * Parsing of the small pieces of a request that every interaction shares: query strings, ids,
 * If-Match / If-None-Match, Prefer and instants. All failures are coded FhirErrors (400), never 500.
 */
import { Errors } from '../fhir/errors.js';
import type { Preferences } from './fhir-exchange.js';

const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

/** Parameters that choose the response format; they are not search criteria. */
export const FORMAT_PARAMS: ReadonlySet<string> = new Set(['_format', '_pretty']);

/**
 * Query parameters in the order sent. Parsed from the raw URL because fastify's querystring parser
 * groups repeated parameters, losing their order relative to others.
 */
export function queryPairs(url: string): [string, string][] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  return formPairs(url.slice(q + 1));
}

/** `a=1&b=2` (query string or form body) as ordered pairs. */
export function formPairs(text: string): [string, string][] {
  const hash = text.indexOf('#');
  return [...new URLSearchParams(hash >= 0 ? text.slice(0, hash) : text)];
}

export function withoutFormatParams(pairs: [string, string][]): [string, string][] {
  return pairs.filter(([k]) => !FORMAT_PARAMS.has(k));
}

export function toQueryString(pairs: [string, string][]): string {
  return new URLSearchParams(pairs).toString();
}

export function lastParam(pairs: [string, string][], name: string): string | undefined {
  let v: string | undefined;
  for (const [k, val] of pairs) if (k === name) v = val;
  return v;
}

export function assertValidId(id: string, expression?: string): void {
  if (!ID_PATTERN.test(id)) throw Errors.invalidId({ id }, expression ? [expression] : undefined);
}

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/**
 * `If-Match: W/"3"` → 3. A strong ETag (`"3"`) is accepted too: some clients drop the `W/`.
 * `*` (any current version) → undefined, i.e. no version check.
 */
export function parseIfMatch(value: string | undefined, headerName = 'If-Match'): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === '*') return undefined;
  const m = /^(?:W\/)?"(\d{1,15})"$/.exec(v);
  if (!m) throw Errors.invalidIfMatch({ value }, [headerName]);
  return Number(m[1]);
}

/** The version ids listed in If-None-Match (`W/"1", W/"2"`); `*` matches any. */
export function ifNoneMatchHits(value: string | undefined, versionId: string | undefined): boolean {
  if (value === undefined || versionId === undefined) return false;
  return value.split(',').some((tag) => {
    const t = tag.trim();
    if (t === '*') return true;
    const m = /^(?:W\/)?"([^"]*)"$/.exec(t);
    return m?.[1] === versionId;
  });
}

/** `Prefer: return=minimal, handling=strict` (unknown preferences are ignored, as RFC 7240 asks). */
export function parsePrefer(header: string | string[] | undefined): Preferences {
  const prefs: Preferences = {};
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  for (const part of text.split(/[,;]/)) {
    const [rawKey, rawValue = ''] = part.split('=');
    const key = rawKey.trim().toLowerCase();
    const value = rawValue.trim().replace(/^"|"$/g, '');
    if (key === 'return') {
      const lower = value.toLowerCase();
      if (lower === 'minimal') prefs.return = 'minimal';
      else if (lower === 'representation') prefs.return = 'representation';
      else if (lower === 'operationoutcome') prefs.return = 'OperationOutcome';
    } else if (key === 'handling') {
      const lower = value.toLowerCase();
      if (lower === 'strict' || lower === 'lenient') prefs.handling = lower;
    }
  }
  return prefs;
}

const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A FHIR instant (`_since`): date, time and time zone required. A `+` sent unencoded in a query
 * arrives as a space; it is taken back as `+` because no valid instant contains a space.
 */
export function parseInstantParam(name: string, raw: string): Date {
  const value = raw.replace(' ', '+');
  const d = new Date(value);
  if (!INSTANT.test(value) || Number.isNaN(d.getTime())) {
    throw Errors.invalidParameter({ name, reason: `'${raw}' is not a FHIR instant (e.g. 2024-01-31T12:00:00Z, with a time zone)` }, [name]);
  }
  return d;
}

/** A page size: a whole number from 0 to max (larger values are capped at max, as FHIR allows). */
export function parseCountParam(raw: string | undefined, dflt: number, max: number): number {
  if (raw === undefined) return dflt;
  if (!/^\d{1,9}$/.test(raw.trim())) throw Errors.invalidParameter({ name: '_count', reason: `'${raw}' is not a whole number ≥ 0` }, ['_count']);
  return Math.min(Number(raw), max);
}

/** `application/FHIR+json; charset=utf-8` → `application/fhir+json`. */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  if (!contentType) return undefined;
  const t = contentType.split(';')[0].trim().toLowerCase();
  return t || undefined;
}
