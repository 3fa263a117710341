/**
 * Reference handling inside batch/transaction Bundles: placeholder ids (`urn:uuid:…`, `urn:oid:…`
 * and other fullUrls of created resources) are rewritten to the ids the server assigned, and
 * conditional references (`Patient?identifier=s|v`) to the one resource they match.
 */
import { isR4ResourceType } from '../fhir/definitions.js';
import { Errors } from '../fhir/errors.js';
import type { ResourceStore } from '../store/resource-store.js';
import { parseCriteria } from './conditional-criteria.js';
import { formPairs } from './request-parsing.js';
import type { ServerContext } from './server-context.js';

const CONDITIONAL_REFERENCE = /^([A-Z][A-Za-z]+)\?(.+)$/;

export function isConditionalReference(ref: string): boolean {
  return CONDITIONAL_REFERENCE.test(ref);
}

/** Every `reference` string anywhere in the value (Reference.reference, in any resource or element). */
export function collectReferences(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) collectReferences(v, out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') out.add(v);
      else collectReferences(v, out);
    }
  }
  return out;
}

/**
 * Rewrites, in place, `reference` values found in `map`, and placeholder URNs quoted in narrative
 * (`div`), so links in the text keep pointing at the right resources.
 */
export function rewriteReferences(value: unknown, map: ReadonlyMap<string, string>): void {
  if (map.size === 0) return;
  if (Array.isArray(value)) {
    for (const v of value) rewriteReferences(v, map);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const obj = value as Record<string, unknown>;
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v === 'string') {
      if (k === 'reference') {
        const target = map.get(v);
        if (target !== undefined) obj[k] = target;
      } else if (k === 'div' && v.includes('urn:')) {
        obj[k] = rewriteNarrative(v, map);
      }
    } else {
      rewriteReferences(v, map);
    }
  }
}

function rewriteNarrative(div: string, map: ReadonlyMap<string, string>): string {
  let out = div;
  for (const [from, to] of map) if (from.startsWith('urn:') && out.includes(from)) out = out.split(from).join(to);
  return out;
}

/**
 * Resolves a conditional reference to `Type/id` by searching: 400 when nothing matches, 412 when
 * more than one resource does.
 */
export async function resolveConditionalReference(ctx: ServerContext, store: ResourceStore, ref: string): Promise<string> {
  const m = CONDITIONAL_REFERENCE.exec(ref);
  if (!m || !isR4ResourceType(m[1])) throw Errors.unresolvedReference({ reference: ref });
  const type = m[1];
  const { search, text } = parseCriteria(ctx, type, formPairs(m[2]), 'reference');
  const ids = await store.matchingIds(search, 2);
  if (ids.length === 0) throw Errors.unresolvedReference({ reference: ref });
  if (ids.length > 1) throw Errors.multipleMatches({ type, criteria: text, count: ids.length });
  return `${type}/${ids[0]}`;
}

/** Resolves the conditional references in `value` not yet in `resolved`, adding them to it. */
export async function resolveConditionalReferences(
  ctx: ServerContext,
  store: ResourceStore,
  value: unknown,
  resolved: Map<string, string>,
): Promise<void> {
  for (const ref of collectReferences(value)) {
    if (!resolved.has(ref) && isConditionalReference(ref)) resolved.set(ref, await resolveConditionalReference(ctx, store, ref));
  }
}
