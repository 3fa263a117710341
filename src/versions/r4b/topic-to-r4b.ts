/**
 * The neutral topic model → an R4B SubscriptionTopic resource (for serving topics on R4B). R4B lists
 * comparators and modifiers in one `canFilterBy.modifier` bound to `subscription-search-modifier`;
 * R5 modifiers that code system lacks (`not`, `missing`, `identifier`, …) cannot be expressed and are
 * left out.
 */
import type { SubscriptionTopic as R4BSubscriptionTopic } from 'fhir/r4b.js';
import type { SubscriptionTopic } from '../../topics/topic-model.js';
import { opt, optList } from '../optional.js';
import { topicToR5 } from '../r5/topic-to-r5.js';
import { R4B_FILTER_MODIFIERS } from './topic-from-r4b.js';

export function topicToR4B(topic: SubscriptionTopic, options: { id?: string } = {}): R4BSubscriptionTopic {
  // The R5 form has the same elements apart from canFilterBy (and name, which R4B lacks).
  const { name: _name, canFilterBy: _r5Filters, ...common } = topicToR5(topic, options) as unknown as Record<string, unknown>;
  return {
    ...common,
    ...optList(
      'canFilterBy',
      topic.canFilterBy.map((f) => ({
        ...opt('description', f.description),
        ...opt('resource', f.resource),
        filterParameter: f.filterParameter,
        ...opt('filterDefinition', f.filterDefinition),
        ...optList('modifier', [...f.comparator, ...f.modifier].filter((c) => R4B_FILTER_MODIFIERS.includes(c))),
      })),
    ),
  } as unknown as R4BSubscriptionTopic;
}
