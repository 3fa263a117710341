/**
 * TEMPORARY seam: `_summary` / `_elements` trimming until the search module exports
 * `applySummaryOrElements`; then this file re-exports it and the local version goes.
 * Keeps mandatory elements (resourceType, id, meta) as FHIR requires.
 */
import type { Resource } from 'fhir/r4.js';
import type { ParsedSearch } from '../fhir/search/types.js';

export function applySummaryOrElements(resource: Resource, search: Pick<ParsedSearch, 'summary' | 'elements'>): Resource {
  const r = resource as Resource & Record<string, unknown>;
  if (search.elements && search.elements.length) {
    const keep = new Set(['resourceType', 'id', 'meta', ...search.elements]);
    return Object.fromEntries(Object.entries(r).filter(([k]) => keep.has(k))) as unknown as Resource;
  }
  if (search.summary === 'text') {
    const keep = new Set(['resourceType', 'id', 'meta', 'text']);
    return Object.fromEntries(Object.entries(r).filter(([k]) => keep.has(k))) as unknown as Resource;
  }
  if (search.summary === 'data') {
    const { text: _text, ...rest } = r;
    return rest;
  }
  return resource;
}
