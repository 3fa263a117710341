/**
 * Structural comparison of notification Bundles with the IG examples: what legitimately differs
 * between two notifications for the same events (ids, uuids, timestamps) is replaced by placeholders.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { IG_DIR } from './ig-validator.js';

const UUID = /^urn:uuid:[0-9a-f-]{36}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** A deep copy with Bundle.id dropped, status ids and urn:uuid fullUrls as `<uuid>`, instants as `<instant>`. */
export function notificationShape(bundle: unknown): unknown {
  const copy = structuredClone(bundle) as { id?: string; entry?: { resource?: { id?: string; resourceType?: string } }[] };
  delete copy.id;
  const status = copy.entry?.[0]?.resource;
  if (status && (status.resourceType === 'Parameters' || status.resourceType === 'SubscriptionStatus')) status.id = '<uuid>';
  return replaceDeep(copy);
}

function replaceDeep(v: unknown): unknown {
  if (typeof v === 'string') return UUID.test(v) ? '<uuid>' : INSTANT.test(v) ? '<instant>' : v;
  if (Array.isArray(v)) return v.map(replaceDeep);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, replaceDeep(x)]));
  return v;
}

/** An IG example (1.1.0 unless `folder` says otherwise) as parsed JSON. */
export function igExample<T = any>(file: string, folder = ''): T {
  return JSON.parse(readFileSync(join(IG_DIR, folder, file), 'utf8')) as T;
}
