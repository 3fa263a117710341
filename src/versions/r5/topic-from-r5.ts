/**
 * R5 SubscriptionTopic JSON → the neutral topic model. The R4B reader (../r4b/topic-from-r4b.ts) reuses
 * `readSubscriptionTopic` and only differs in how `canFilterBy` lists comparators and modifiers.
 * Unknown elements (identifier, jurisdiction, meta, …) are ignored; known ones are checked for type and
 * code and every problem is reported at once, at its JSON path.
 */
import { Errors } from '../../fhir/errors.js';
import { opt } from '../optional.js';
import type {
  CanFilterBy, Coding, EventTrigger, NotificationShape, PublicationStatus, QueryCriteria, RelatedQuery,
  ResourceTrigger, SearchComparator, SubscriptionTopic, TriggerInteraction, CriteriaResult,
} from '../../topics/topic-model.js';
import {
  CRITERIA_RESULTS, filterParameterProblem, isAbsoluteCanonical, listOf, PUBLICATION_STATUSES, RESOURCE_URI_EXPECTED,
  resourceTypeOf, SEARCH_COMPARATORS, SEARCH_MODIFIERS, TopicIssues, TRIGGER_INTERACTIONS,
} from '../../topics/topic-rules.js';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Typed access to a JSON object's properties that records wrongly typed values as issues. */
export class JsonTopicReader {
  constructor(readonly issues: TopicIssues) {}

  string(o: Obj, key: string, path: string, required = false): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.issues.add(`${path}.${key}`, 'is required');
      return undefined;
    }
    if (typeof v !== 'string') {
      this.issues.add(`${path}.${key}`, `must be a string, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }

  code<T extends string>(o: Obj, key: string, path: string, accepted: readonly T[], required = false): T | undefined {
    const v = this.string(o, key, path, required);
    if (v === undefined) return undefined;
    if (!(accepted as readonly string[]).includes(v)) {
      this.issues.add(`${path}.${key}`, `'${v}' is not one of ${listOf(accepted)}`);
      return undefined;
    }
    return v as T;
  }

  boolean(o: Obj, key: string, path: string): boolean | undefined {
    const v = o[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') {
      this.issues.add(`${path}.${key}`, `must be true or false, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  }

  objects(o: Obj, key: string, path: string): { value: Obj; path: string }[] {
    return this.array(o, key, path).flatMap((v, i) => {
      if (isObj(v)) return [{ value: v, path: `${path}.${key}[${i}]` }];
      this.issues.add(`${path}.${key}[${i}]`, 'must be a JSON object');
      return [];
    });
  }

  strings(o: Obj, key: string, path: string): string[] {
    return this.array(o, key, path).flatMap((v, i) => {
      if (typeof v === 'string') return [v];
      this.issues.add(`${path}.${key}[${i}]`, `must be a string, got ${JSON.stringify(v)}`);
      return [];
    });
  }

  codes<T extends string>(o: Obj, key: string, path: string, accepted: readonly T[]): T[] {
    return this.strings(o, key, path).flatMap((v, i): T[] => {
      if ((accepted as readonly string[]).includes(v)) return [v as T];
      this.issues.add(`${path}.${key}[${i}]`, `'${v}' is not one of ${listOf(accepted)}`);
      return [];
    });
  }

  /** A `resource` element as a type name; `*` (used by some published topics for "any") gives undefined. */
  resource(o: Obj, key: string, path: string, required: boolean): string | undefined {
    const v = this.string(o, key, path, required);
    if (v === undefined || (!required && v === '*')) return undefined;
    const type = resourceTypeOf(v);
    if (!type) this.issues.add(`${path}.${key}`, `'${v}' is not ${RESOURCE_URI_EXPECTED}`);
    return type;
  }

  private array(o: Obj, key: string, path: string): unknown[] {
    const v = o[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.issues.add(`${path}.${key}`, 'must be a JSON array');
      return [];
    }
    return v;
  }
}

/** Reads the comparator and modifier lists of one `canFilterBy` (the only R4B/R5 difference). */
export type FilterCodesReader = (r: JsonTopicReader, cf: Obj, path: string) => { comparator: SearchComparator[]; modifier: string[] };

const r5FilterCodes: FilterCodesReader = (r, cf, path) => ({
  comparator: r.codes(cf, 'comparator', path, SEARCH_COMPARATORS),
  modifier: r.codes(cf, 'modifier', path, SEARCH_MODIFIERS),
});

/** Parses an R5 SubscriptionTopic; throws CLARION_NOT_A_TOPIC or CLARION_INVALID_TOPIC (one issue per problem). */
export function topicFromR5(json: unknown): SubscriptionTopic {
  return readSubscriptionTopic(json, r5FilterCodes);
}

/** The shared reader of R4B and R5 SubscriptionTopic resources. */
export function readSubscriptionTopic(json: unknown, filterCodes: FilterCodesReader): SubscriptionTopic {
  if (!isObj(json)) throw Errors.notATopic({ reason: 'expected a JSON object' });
  if (json.resourceType !== 'SubscriptionTopic') {
    throw Errors.notATopic({ reason: `resourceType is ${JSON.stringify(json.resourceType)}, expected SubscriptionTopic` }, ['resourceType']);
  }
  const P = 'SubscriptionTopic';
  const issues = new TopicIssues();
  const r = new JsonTopicReader(issues);
  const url = r.string(json, 'url', P, true);
  if (url !== undefined) {
    issues.url = url;
    if (!isAbsoluteCanonical(url)) issues.add(`${P}.url`, `'${url}' must be an absolute URI without '|version'`);
  }
  const status = r.code<PublicationStatus>(json, 'status', P, PUBLICATION_STATUSES, true);
  const topic: SubscriptionTopic = {
    url: url ?? '',
    ...opt('version', r.string(json, 'version', P)),
    ...opt('name', r.string(json, 'name', P)),
    ...opt('title', r.string(json, 'title', P)),
    status: status ?? 'unknown',
    ...opt('date', r.string(json, 'date', P)),
    ...opt('description', r.string(json, 'description', P)),
    derivedFrom: r.strings(json, 'derivedFrom', P),
    resourceTriggers: r.objects(json, 'resourceTrigger', P).map(({ value, path }) => readResourceTrigger(r, value, path)),
    eventTriggers: r.objects(json, 'eventTrigger', P).map(({ value, path }) => readEventTrigger(r, value, path)),
    canFilterBy: r.objects(json, 'canFilterBy', P).map(({ value, path }) => readCanFilterBy(r, value, path, filterCodes)),
    notificationShape: r.objects(json, 'notificationShape', P).map(({ value, path }) => readShape(r, value, path)),
  };
  issues.throwIfAny();
  return topic;
}

function readResourceTrigger(r: JsonTopicReader, o: Obj, path: string): ResourceTrigger {
  return {
    ...opt('description', r.string(o, 'description', path)),
    resource: r.resource(o, 'resource', path, true) ?? '',
    supportedInteraction: r.codes<TriggerInteraction>(o, 'supportedInteraction', path, TRIGGER_INTERACTIONS),
    ...opt('queryCriteria', readQueryCriteria(r, o.queryCriteria, `${path}.queryCriteria`)),
    ...opt('fhirPathCriteria', r.string(o, 'fhirPathCriteria', path)),
  };
}

function readQueryCriteria(r: JsonTopicReader, qc: unknown, q: string): QueryCriteria | undefined {
  if (qc === undefined) return undefined;
  if (!isObj(qc)) {
    r.issues.add(q, 'must be a JSON object');
    return undefined;
  }
  return {
    ...opt('previous', r.string(qc, 'previous', q)),
    ...opt('resultForCreate', r.code<CriteriaResult>(qc, 'resultForCreate', q, CRITERIA_RESULTS)),
    ...opt('current', r.string(qc, 'current', q)),
    ...opt('resultForDelete', r.code<CriteriaResult>(qc, 'resultForDelete', q, CRITERIA_RESULTS)),
    ...opt('requireBoth', r.boolean(qc, 'requireBoth', q)),
  };
}

function readEventTrigger(r: JsonTopicReader, o: Obj, path: string): EventTrigger {
  const event = o.event;
  if (!isObj(event)) r.issues.add(`${path}.event`, event === undefined ? 'is required' : 'must be a CodeableConcept');
  return {
    ...opt('description', r.string(o, 'description', path)),
    event: isObj(event) ? (event) : {},
    resource: r.resource(o, 'resource', path, true) ?? '',
  };
}

function readCanFilterBy(r: JsonTopicReader, o: Obj, path: string, filterCodes: FilterCodesReader): CanFilterBy {
  const filterParameter = r.string(o, 'filterParameter', path, true) ?? '';
  const problem = o.filterParameter === undefined ? undefined : filterParameterProblem(filterParameter);
  if (problem) r.issues.add(`${path}.filterParameter`, problem);
  return {
    ...opt('description', r.string(o, 'description', path)),
    ...opt('resource', r.resource(o, 'resource', path, false)),
    filterParameter,
    ...opt('filterDefinition', r.string(o, 'filterDefinition', path)),
    ...filterCodes(r, o, path),
  };
}

function readShape(r: JsonTopicReader, o: Obj, path: string): NotificationShape {
  return {
    resource: r.resource(o, 'resource', path, true) ?? '',
    include: r.strings(o, 'include', path),
    revInclude: r.strings(o, 'revInclude', path),
    relatedQuery: r.objects(o, 'relatedQuery', path).flatMap(({ value, path: p }): RelatedQuery[] => {
      const query = r.string(value, 'query', p, true);
      if (query === undefined) return [];
      return [{ ...opt('queryType', isObj(value.queryType) ? (value.queryType as Coding) : undefined), query }];
    }),
  };
}
