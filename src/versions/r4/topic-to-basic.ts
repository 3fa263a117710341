/**
 * The neutral topic model → an R4 `Basic` resource with the R5 cross-version extensions, so that
 * Clarion can serve its topics on R4 (IG 1.2.0-ballot style; the shape of the published Basic topics:
 * status as a modifierExtension, trigger resources as StructureDefinition URLs).
 */
import type { Basic, Extension } from 'fhir/r4.js';
import type { SubscriptionTopic } from '../../topics/topic-model.js';
import { CORE_SD_PREFIX, FHIR_TYPES_SYSTEM, RELATED_QUERY_URL, XVER_WRITE_PREFIX } from './basic-topic-extensions.js';

const xver = (element: string): string => XVER_WRITE_PREFIX + element;

type ValueKey = 'valueUri' | 'valueString' | 'valueMarkdown' | 'valueCode' | 'valueDateTime' | 'valueCanonical' | 'valueBoolean';

function simple(url: string, key: ValueKey, value: string | boolean | undefined): Extension[] {
  return value === undefined ? [] : [{ url, [key]: value }];
}

function many(url: string, key: ValueKey, values: readonly string[]): Extension[] {
  return values.map((v) => ({ url, [key]: v }));
}

function complex(url: string, parts: Extension[]): Extension {
  return { url, extension: parts };
}

export interface TopicToBasicOptions {
  /** Basic.id; defaults to the last path segment of the topic url (made a valid id). */
  id?: string;
}

/** The topic as an R4 Basic resource (`code` = fhir-types#SubscriptionTopic). */
export function topicToBasic(topic: SubscriptionTopic, options: TopicToBasicOptions = {}): Basic {
  const extension: Extension[] = [
    ...simple(xver('url'), 'valueUri', topic.url),
    ...simple(xver('version'), 'valueString', topic.version),
    ...simple(xver('name'), 'valueString', topic.name),
    ...simple(xver('title'), 'valueString', topic.title),
    ...simple(xver('date'), 'valueDateTime', topic.date),
    ...simple(xver('description'), 'valueMarkdown', topic.description),
    ...many(xver('derivedFrom'), 'valueCanonical', topic.derivedFrom),
    ...topic.resourceTriggers.map((t) =>
      complex(xver('resourceTrigger'), [
        ...simple('description', 'valueMarkdown', t.description),
        ...simple('resource', 'valueUri', CORE_SD_PREFIX + t.resource),
        ...many('supportedInteraction', 'valueCode', t.supportedInteraction),
        ...(t.queryCriteria
          ? [
              complex('queryCriteria', [
                ...simple('previous', 'valueString', t.queryCriteria.previous),
                ...simple('resultForCreate', 'valueCode', t.queryCriteria.resultForCreate),
                ...simple('current', 'valueString', t.queryCriteria.current),
                ...simple('resultForDelete', 'valueCode', t.queryCriteria.resultForDelete),
                ...simple('requireBoth', 'valueBoolean', t.queryCriteria.requireBoth),
              ]),
            ]
          : []),
        ...simple('fhirPathCriteria', 'valueString', t.fhirPathCriteria),
      ]),
    ),
    ...topic.eventTriggers.map((t) =>
      complex(xver('eventTrigger'), [
        ...simple('description', 'valueMarkdown', t.description),
        { url: 'event', valueCodeableConcept: t.event },
        ...simple('resource', 'valueUri', CORE_SD_PREFIX + t.resource),
      ]),
    ),
    ...topic.canFilterBy.map((f) =>
      complex(xver('canFilterBy'), [
        ...simple('description', 'valueMarkdown', f.description),
        ...simple('resource', 'valueUri', f.resource),
        ...simple('filterParameter', 'valueString', f.filterParameter),
        ...simple('filterDefinition', 'valueUri', f.filterDefinition),
        ...many('comparator', 'valueCode', f.comparator),
        ...many('modifier', 'valueCode', f.modifier),
      ]),
    ),
    ...topic.notificationShape.map((s) =>
      complex(xver('notificationShape'), [
        ...simple('resource', 'valueUri', s.resource),
        ...many('include', 'valueString', s.include),
        ...many('revInclude', 'valueString', s.revInclude),
        ...s.relatedQuery.map((q) =>
          complex(RELATED_QUERY_URL, [...(q.queryType ? [{ url: 'queryType', valueCoding: q.queryType }] : []), { url: 'query', valueString: q.query }]),
        ),
      ]),
    ),
  ];
  return {
    resourceType: 'Basic',
    id: options.id ?? idFromUrl(topic.url),
    // Status is a modifier in the published Basic topics (a retired topic must not be used as active).
    modifierExtension: [{ url: xver('status'), valueCode: topic.status }],
    extension,
    code: { coding: [{ system: FHIR_TYPES_SYSTEM, code: 'SubscriptionTopic' }] },
  };
}

/** A FHIR id derived from the last path segment of a canonical URL. */
function idFromUrl(url: string): string {
  const last = url.replace(/[/#?]+$/, '').split(/[/#]/).pop() ?? '';
  const id = last.replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 64);
  return id || 'topic';
}
