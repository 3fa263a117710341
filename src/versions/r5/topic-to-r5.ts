/** The neutral topic model → an R5 SubscriptionTopic resource (for serving topics on R5). */
import type { SubscriptionTopic as R5SubscriptionTopic } from 'fhir/r5.js';
import type { SubscriptionTopic } from '../../topics/topic-model.js';
import { opt, optList } from '../optional.js';

const CORE_SD_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

export function topicToR5(topic: SubscriptionTopic, options: { id?: string } = {}): R5SubscriptionTopic {
  return {
    resourceType: 'SubscriptionTopic',
    ...opt('id', options.id),
    url: topic.url,
    ...opt('version', topic.version),
    ...opt('name', topic.name),
    ...opt('title', topic.title),
    ...optList('derivedFrom', topic.derivedFrom),
    status: topic.status,
    ...opt('date', topic.date),
    ...opt('description', topic.description),
    ...optList(
      'resourceTrigger',
      topic.resourceTriggers.map((t) => ({
        ...opt('description', t.description),
        resource: CORE_SD_PREFIX + t.resource,
        ...optList('supportedInteraction', t.supportedInteraction),
        ...opt('queryCriteria', t.queryCriteria && { ...t.queryCriteria }),
        ...opt('fhirPathCriteria', t.fhirPathCriteria),
      })),
    ),
    ...optList(
      'eventTrigger',
      topic.eventTriggers.map((t) => ({ ...opt('description', t.description), event: t.event, resource: CORE_SD_PREFIX + t.resource })),
    ),
    ...optList(
      'canFilterBy',
      topic.canFilterBy.map((f) => ({
        ...opt('description', f.description),
        ...opt('resource', f.resource),
        filterParameter: f.filterParameter,
        ...opt('filterDefinition', f.filterDefinition),
        ...optList('comparator', f.comparator),
        ...optList('modifier', f.modifier),
      })),
    ),
    ...optList(
      'notificationShape',
      topic.notificationShape.map((s) => ({
        resource: s.resource,
        ...optList('include', s.include),
        ...optList('revInclude', s.revInclude),
        // R5 has no relatedQuery (R6 / IG 1.2.0-ballot): it is not written.
      })),
    ),
  } as R5SubscriptionTopic;
}
