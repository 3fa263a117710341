/**
 * Search criteria of conditional interactions (If-None-Exist, conditional update/delete/patch,
 * conditional references). Always parsed strictly: an ignored criterion would silently widen the
 * match and act on the wrong resources.
 */
import { Errors } from '../fhir/errors.js';
import { parseSearchRequest } from '../fhir/search/parse.js';
import type { ParsedSearch } from '../fhir/search/types.js';
import type { ServerContext } from './server-context.js';
import { formPairs, toQueryString, withoutFormatParams } from './request-parsing.js';

export interface Criteria {
  search: ParsedSearch;
  /** Canonical text of the criteria (identifies them, e.g. for the store's lock). */
  text: string;
}

export function parseCriteria(ctx: ServerContext, type: string, pairs: [string, string][], interaction: string): Criteria {
  const criteria = withoutFormatParams(pairs);
  if (criteria.length === 0) throw Errors.conditionalNeedsCriteria({ interaction });
  const search = parseSearchRequest(type, criteria, {
    strict: true,
    defaultCount: ctx.config.search.defaultCount,
    maxCount: ctx.config.search.maxCount,
  });
  return { search, text: toQueryString(criteria) };
}

/**
 * `If-None-Exist` may hold `identifier=x`, `?identifier=x`, `Patient?identifier=x` or a full URL;
 * only the query part counts.
 */
export function criteriaFromHeader(value: string): [string, string][] {
  const q = value.indexOf('?');
  return formPairs(q >= 0 ? value.slice(q + 1) : value);
}
