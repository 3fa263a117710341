/**
 * Opaque keyset paging cursors: base64url JSON holding the sort key values of a boundary row plus its
 * (resource_type, id) tie-breaker, the direction, a fingerprint of the search it belongs to, and a
 * checksum. Decoding validates all of it (Errors.invalidCursor), so a cursor cannot be replayed on
 * another search or edited.
 */
import { createHash } from 'node:crypto';
import { Errors } from '../errors.js';
import type { ParsedSearch } from './types.js';

export interface CursorState {
  /** 'next': rows after the boundary; 'prev': rows before it. */
  dir: 'next' | 'prev';
  /** Sort key values of the boundary row, as text (null for a missing value). */
  keys: (string | null)[];
  resourceType: string;
  id: string;
}

const SALT = 'clarion-cursor-v1';

function sha(s: string, len: number): string {
  return createHash('sha256').update(s).digest('base64url').slice(0, len);
}

/** Fingerprint of what defines the result order and set (type, filters, sort). */
export function searchFingerprint(search: ParsedSearch): string {
  return sha(JSON.stringify([search.resourceType, search.filters, search.sort]), 16);
}

export function encodeCursor(search: ParsedSearch, state: CursorState): string {
  const body = { v: 1, f: searchFingerprint(search), d: state.dir === 'next' ? 'n' : 'p', k: state.keys, t: state.resourceType, i: state.id };
  const json = JSON.stringify(body);
  return Buffer.from(JSON.stringify({ b: body, c: sha(SALT + json, 12) })).toString('base64url');
}

export function decodeCursor(search: ParsedSearch, cursor: string, keyCount: number): CursorState {
  const invalid = () => Errors.invalidCursor({});
  if (!/^[A-Za-z0-9_-]{1,4096}$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const o = parsed as { b?: Record<string, unknown>; c?: unknown };
  const b = o?.b;
  if (!b || typeof b !== 'object' || typeof o.c !== 'string') throw invalid();
  if (sha(SALT + JSON.stringify(b), 12) !== o.c) throw invalid();
  if (b.v !== 1 || b.f !== searchFingerprint(search)) throw invalid();
  if (b.d !== 'n' && b.d !== 'p') throw invalid();
  if (typeof b.t !== 'string' || b.t !== search.resourceType || typeof b.i !== 'string') throw invalid();
  const keys = b.k;
  if (!Array.isArray(keys) || keys.length !== keyCount || !keys.every((k) => k === null || typeof k === 'string')) throw invalid();
  return { dir: b.d === 'n' ? 'next' : 'prev', keys: keys as (string | null)[], resourceType: b.t, id: b.i };
}
