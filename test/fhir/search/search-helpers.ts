/**
 * Test helpers for search: rows are inserted directly with SQL (using extractSearchIndex), so these
 * tests depend only on the search code and the schema.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { FhirResource, Resource } from 'fhir/r4.js';
import type { Queryable } from '../../../src/store/db.js';
import { extractSearchIndex } from '../../../src/fhir/search/extract.js';
import { storedTokens } from '../../../src/fhir/search/sql-where.js';
import { parseSearchRequest } from '../../../src/fhir/search/parse.js';
import type { ParsedSearch, SearchOptions, SearchPage } from '../../../src/fhir/search/types.js';
import { executeSearch } from '../../../src/store/search-sql.js';

/** Inserts resources as version 1; last_updated = meta.lastUpdated (set to `now` when absent). */
export async function insertResources(q: Queryable, resources: (Resource | FhirResource)[], now = new Date('2024-01-01T00:00:00Z')): Promise<void> {
  for (const input of resources) {
    const r: Resource = structuredClone(input);
    r.meta = { ...r.meta, versionId: '1', lastUpdated: r.meta?.lastUpdated ?? now.toISOString() };
    const index = extractSearchIndex(r);
    await q.query(
      `INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content, idx, tokens)
       VALUES ($1, $2, 1, $3, false, $4, $5, $6)`,
      [r.resourceType, r.id, r.meta.lastUpdated, JSON.stringify(r), JSON.stringify(index.idx), storedTokens(index.tokens)],
    );
  }
}

export function pairs(query: string): [string, string][] {
  return [...new URLSearchParams(query).entries()];
}

export function parse(type: string, query: string, options: Partial<SearchOptions> = {}): ParsedSearch {
  return parseSearchRequest(type, pairs(query), { strict: true, ...options });
}

export async function search(q: Queryable, type: string, query: string, options: Partial<SearchOptions> = {}): Promise<SearchPage> {
  return executeSearch(q, parse(type, query, options));
}

/** Ids of the matches (mode 'match') of a search, in result order. */
export async function ids(q: Queryable, type: string, query: string, options: Partial<SearchOptions> = {}): Promise<string[]> {
  const page = await search(q, type, query, { maxCount: 1000, defaultCount: 1000, ...options });
  return page.entries.filter((e) => e.mode === 'match').map((e) => e.resource.id!);
}

const require = createRequire(import.meta.url);
export const EXAMPLES_DIR = dirname(require.resolve('hl7.fhir.r4.examples/package.json'));

/** R4 example resources (excluding package metadata), optionally filtered by file name prefix. */
export function loadExamples(filter: (file: string) => boolean = () => true): Resource[] {
  const out: Resource[] = [];
  for (const f of readdirSync(EXAMPLES_DIR).sort()) {
    if (!f.endsWith('.json') || f === 'package.json' || !filter(f)) continue;
    let r: unknown;
    try {
      r = JSON.parse(readFileSync(join(EXAMPLES_DIR, f), 'utf8'));
    } catch {
      continue;
    }
    if (r && typeof r === 'object' && 'resourceType' in r && 'id' in r) out.push(r as Resource);
  }
  return out;
}
