/**
 * `_summary` / `_elements` for the REST layer: the search module trims, this adds the SUBSETTED tag
 * FHIR requires, so a client never mistakes a partial resource for the whole (and writes it back).
 */
import type { Coding, Resource } from 'fhir/r4.js';
import { applySummaryOrElements, trimsResources } from '../fhir/search/summary.js';
import type { ParsedSearch } from '../fhir/search/types.js';

const SUBSETTED: Coding = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' };

type Subsetting = Pick<ParsedSearch, 'summary' | 'elements'>;

/** Whether the request asks for less than the whole resource. */
export function trims(s: Subsetting): boolean {
  return trimsResources(s);
}

export function subsetResource(resource: Resource, s: Subsetting): Resource {
  const trimmed = applySummaryOrElements(resource, s);
  const tags = trimmed.meta?.tag ?? [];
  if (tags.some((t) => t.system === SUBSETTED.system && t.code === SUBSETTED.code)) return trimmed;
  return { ...trimmed, meta: { ...(trimmed.meta ?? {}), tag: [...tags, SUBSETTED] } };
}
