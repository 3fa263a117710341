/**
 * _include and _revinclude: follows reference parameters from the page's matches (and, for
 * `:iterate`, from included resources, up to MAX_ITERATIONS levels) using the exact-match reference
 * keys in `tokens` (`subject>Patient/1`, see extract.ts).
 */
import type { Resource } from 'fhir/r4.js';
import type { Queryable } from '../../store/db.js';
import type { IncludeSpec, ParsedSearch } from './types.js';
import { referenceParamsFor } from './params.js';

/** Levels of `:iterate` after the first. */
export const MAX_ITERATIONS = 3;
/** Upper bound on resources included in one page. */
export const MAX_INCLUDED = 1000;

interface Source {
  resource: Resource;
  tokens: string[];
}

interface IncRow {
  resource_type: string;
  id: string;
  content: string;
  tokens: string[];
}

const REL = /^([A-Za-z]+)\/([A-Za-z0-9.-]{1,64})$/;

function paramsOf(spec: IncludeSpec, type: string): string[] {
  return spec.param === '*' ? referenceParamsFor(type).map((p) => p.code) : [spec.param];
}

/** `Type/id` targets of the forward includes that apply to `src`. */
function forwardTargets(specs: IncludeSpec[], src: Source, out: Set<string>): void {
  const type = src.resource.resourceType;
  for (const spec of specs) {
    if (spec.sourceType !== type) continue;
    for (const code of paramsOf(spec, type)) {
      const prefix = `${code}>`;
      for (const t of src.tokens) {
        if (!t.startsWith(prefix)) continue;
        const ref = t.slice(prefix.length);
        const m = REL.exec(ref);
        if (!m || (spec.targetType && m[1] !== spec.targetType)) continue;
        out.add(ref);
      }
    }
  }
}

async function fetchByRefs(q: Queryable, refs: string[]): Promise<IncRow[]> {
  if (refs.length === 0) return [];
  const types: string[] = [];
  const ids: string[] = [];
  for (const r of refs) {
    const m = REL.exec(r)!;
    types.push(m[1]);
    ids.push(m[2]);
  }
  const res = await q.query<IncRow>(
    `SELECT r.resource_type, r.id, r.content, r.tokens FROM resources r
     WHERE r.deleted = false AND (r.resource_type, r.id) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
    [types, ids],
  );
  return res.rows;
}

async function fetchReferrers(q: Queryable, specs: IncludeSpec[], targets: Source[], limit: number): Promise<IncRow[]> {
  const out: IncRow[] = [];
  for (const spec of specs) {
    const refs = targets
      .map((t) => `${t.resource.resourceType}/${t.resource.id}`)
      .filter((r) => !spec.targetType || r.startsWith(`${spec.targetType}/`));
    if (refs.length === 0) continue;
    const keys = paramsOf(spec, spec.sourceType).flatMap((code) => refs.map((r) => `${code}>${r}`));
    if (keys.length === 0) continue;
    const res = await q.query<IncRow>(
      `SELECT r.resource_type, r.id, r.content, r.tokens FROM resources r
       WHERE r.resource_type = $1 AND r.deleted = false AND r.tokens && $2::text[] ORDER BY r.id LIMIT $3`,
      [spec.sourceType, keys, limit],
    );
    out.push(...res.rows);
  }
  return out;
}

/** Resources included by the search's _include/_revinclude for the given matches (deduplicated). */
export async function collectIncludes(q: Queryable, search: ParsedSearch, matches: Source[]): Promise<Resource[]> {
  const seen = new Set(matches.map((m) => `${m.resource.resourceType}/${m.resource.id}`));
  const included: Resource[] = [];
  let sources = matches;
  for (let level = 0; level <= MAX_ITERATIONS && sources.length > 0; level++) {
    const inc = level === 0 ? search.include : search.include.filter((s) => s.iterate);
    const rev = level === 0 ? search.revinclude : search.revinclude.filter((s) => s.iterate);
    if (inc.length === 0 && rev.length === 0) break;
    const targets = new Set<string>();
    for (const s of sources) forwardTargets(inc, s, targets);
    const rows = [
      ...(await fetchByRefs(q, [...targets].filter((r) => !seen.has(r)))),
      ...(await fetchReferrers(q, rev, sources, MAX_INCLUDED)),
    ];
    const next: Source[] = [];
    for (const row of rows) {
      const key = `${row.resource_type}/${row.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const resource = JSON.parse(row.content) as Resource;
      included.push(resource);
      next.push({ resource, tokens: row.tokens });
      if (included.length >= MAX_INCLUDED) return included;
    }
    sources = next;
  }
  return included;
}
