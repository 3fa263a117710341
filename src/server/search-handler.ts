/**
 * Type-level search (GET [type]?…, POST [type]/_search): parses the criteria, runs the store's
 * search and returns a searchset Bundle with paging links. Links repeat the parameters that were
 * used (ignored ones are left out and reported in an outcome entry), plus the page cursor.
 */
import type { OperationOutcome, Resource } from 'fhir/r4.js';
import { Errors } from '../fhir/errors.js';
import { parseSearchRequest } from '../fhir/search/parse.js';
import type { ParsedSearch } from '../fhir/search/types.js';
import type { ResourceStore } from '../store/resource-store.js';
import { searchsetBundle } from './bundle-builders.js';
import { subsetResource, trims } from './resource-subsetting.js';
import { MEDIA, type FhirRequest, type FhirResponse } from './fhir-exchange.js';
import { formPairs, toQueryString, withoutFormatParams } from './request-parsing.js';
import type { ServerContext } from './server-context.js';

export const CURSOR_PARAM = '_cursor';

/** URL parameters, then those of a form body (POST _search), in the order sent. */
export function searchPairs(req: FhirRequest): [string, string][] {
  const pairs = [...req.params];
  if (req.body !== undefined) {
    if (req.bodyType !== MEDIA.form || typeof req.body !== 'string') {
      throw Errors.unsupportedMediaType({ contentType: req.bodyType ?? '(none)' }, ['Content-Type']);
    }
    pairs.push(...formPairs(req.body));
  }
  return pairs;
}

export async function searchType(ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const type = req.type as string;
  const pairs = searchPairs(req);
  const parsed = parseSearchRequest(type, withoutFormatParams(pairs), {
    strict: req.prefer.handling === 'strict',
    defaultCount: ctx.config.search.defaultCount,
    maxCount: ctx.config.search.maxCount,
  });
  const countOnly = parsed.summary === 'count';
  const page = await store.search(countOnly ? { ...parsed, total: 'accurate', include: [], revinclude: [] } : parsed);

  const base = ctx.baseUrl();
  const kept = keptParams(pairs, parsed);
  const withoutCursor = kept.filter(([k]) => k !== CURSOR_PARAM);
  const url = (p: [string, string][]) => `${base}/${type}${p.length ? `?${toQueryString(p)}` : ''}`;
  const pageUrl = (cursor: string) => url([...withoutCursor, [CURSOR_PARAM, cursor]]);

  const bundle = searchsetBundle({
    base,
    now: ctx.clock.now(),
    matches: countOnly ? [] : page.entries,
    ...(page.total !== undefined ? { total: page.total } : {}),
    links: {
      self: url(kept),
      ...(page.nextCursor && !countOnly ? { next: pageUrl(page.nextCursor) } : {}),
      ...(page.prevCursor && !countOnly ? { previous: pageUrl(page.prevCursor) } : {}),
    },
    ...(parsed.ignored.length ? { outcome: ignoredOutcome(parsed) } : {}),
    ...(trims(parsed) ? { transform: (r: Resource) => subsetResource(r, parsed) } : {}),
  });
  return { status: 200, body: bundle };
}

/** Parameters to repeat in links: all but the ignored ones (their names as reported by the parser). */
function keptParams(pairs: [string, string][], parsed: ParsedSearch): [string, string][] {
  if (parsed.ignored.length === 0) return pairs;
  const ignored = new Set(parsed.ignored.map((i) => i.name));
  return pairs.filter(([k]) => !ignored.has(k) && !ignored.has(k.split(/[:.]/)[0]));
}

function ignoredOutcome(parsed: ParsedSearch): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: parsed.ignored.map((i) => ({
      severity: 'warning',
      code: 'not-supported',
      diagnostics: `Search parameter '${i.name}' was ignored: ${i.reason}`,
      expression: [i.name],
    })),
  };
}
