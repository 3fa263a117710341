/**
 * R4B SubscriptionTopic JSON → the neutral topic model. R4B differs from R5 (for what the model holds)
 * only in `canFilterBy`: one `modifier` list bound to `subscription-search-modifier`, mixing comparators
 * (`eq`, `gt`, …), modifiers (`in`, `of-type`, …) and `=` (plain equality, the default — dropped). It
 * is split into R5's `comparator` and `modifier`.
 */
import type { SearchComparator, SubscriptionTopic } from '../../topics/topic-model.js';
import { listOf, SEARCH_COMPARATORS } from '../../topics/topic-rules.js';
import { readSubscriptionTopic, type FilterCodesReader } from '../r5/topic-from-r5.js';

/** R4B `http://terminology.hl7.org/CodeSystem/subscription-search-modifier`. */
export const R4B_FILTER_MODIFIERS: readonly string[] = ['=', 'eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap', 'above', 'below', 'in', 'not-in', 'of-type'];

const r4bFilterCodes: FilterCodesReader = (r, cf, path) => {
  const comparator: SearchComparator[] = [];
  const modifier: string[] = [];
  r.strings(cf, 'modifier', path).forEach((code, i) => {
    if (!R4B_FILTER_MODIFIERS.includes(code)) r.issues.add(`${path}.modifier[${i}]`, `'${code}' is not one of ${listOf(R4B_FILTER_MODIFIERS)}`);
    else if ((SEARCH_COMPARATORS as readonly string[]).includes(code)) comparator.push(code as SearchComparator);
    else if (code !== '=') modifier.push(code);
  });
  if (cf.comparator !== undefined) r.issues.add(`${path}.comparator`, 'is an R5 element; R4B lists comparators in canFilterBy.modifier');
  return { comparator, modifier };
};

/** Parses an R4B SubscriptionTopic; throws CLARION_NOT_A_TOPIC or CLARION_INVALID_TOPIC (one issue per problem). */
export function topicFromR4B(json: unknown): SubscriptionTopic {
  return readSubscriptionTopic(json, r4bFilterCodes);
}
