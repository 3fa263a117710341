// STUB — replaced by the search implementation. Keeps the write path compiling meanwhile.
import type { Resource } from 'fhir/r4.js';
import type { SearchIndex } from './types.js';

export function extractSearchIndex(resource: Resource): SearchIndex {
  return { idx: {}, tokens: resource.id ? [`_id|${resource.id}`] : [] };
}
