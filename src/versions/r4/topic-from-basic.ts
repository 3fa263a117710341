/**
 * R4 `Basic`-wrapped SubscriptionTopic (cross-version extensions) → the neutral topic model.
 * Problems are reported at their Basic path (`Basic.extension[6].extension[1]`) together with the
 * topic element they stand for (`resourceTrigger.resource`), all at once.
 *
 * Tolerance: cross-version extensions for elements the model does not hold (jurisdiction, publisher,
 * …) and extensions that are not cross-version ones are ignored. Not ignored: an unknown
 * `modifierExtension` (it may change the meaning of the topic) and unknown sub-extensions of the
 * complex elements (their definitions are closed).
 */
import { Errors } from '../../fhir/errors.js';
import type {
  CanFilterBy, CodeableConcept, Coding, CriteriaResult, EventTrigger, NotificationShape, PublicationStatus, QueryCriteria,
  RelatedQuery, ResourceTrigger, SearchComparator, SubscriptionTopic, TriggerInteraction,
} from '../../topics/topic-model.js';
import {
  CRITERIA_RESULTS, filterParameterProblem, isAbsoluteCanonical, listOf, PUBLICATION_STATUSES, RESOURCE_URI_EXPECTED,
  resourceTypeOf, SEARCH_COMPARATORS, SEARCH_MODIFIERS, TopicIssues, TRIGGER_INTERACTIONS,
} from '../../topics/topic-rules.js';
import { opt } from '../optional.js';
import { FHIR_TYPES_SYSTEM, RELATED_QUERY_URL, xverElement } from './basic-topic-extensions.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An extension found at `path`, standing for topic element `element`. */
interface Found {
  ext: Obj;
  path: string;
  element: string;
}

const STRING_KINDS = new Set(['Uri', 'Url', 'Canonical', 'String', 'Markdown', 'Code', 'DateTime']);

class ExtensionReader {
  constructor(readonly issues: TopicIssues) {}

  /** The value[x] of a simple extension, checked against the accepted `kinds` (`Uri`, `String`, …). */
  value(f: Found, kinds: readonly string[]): unknown {
    const keys = Object.keys(f.ext).filter((k) => k.startsWith('value'));
    const expected = kinds.map((k) => `value${k}`).join(' or ');
    if (keys.length !== 1) {
      this.issues.add(f.path, keys.length === 0 ? `has no value; expected ${expected}` : `has several values (${keys.join(', ')})`, f.element);
      return undefined;
    }
    const kind = keys[0].slice('value'.length);
    if (!kinds.includes(kind)) {
      this.issues.add(f.path, `has ${keys[0]}; expected ${expected}`, f.element);
      return undefined;
    }
    const v = f.ext[keys[0]];
    const ok = STRING_KINDS.has(kind) ? typeof v === 'string' : kind === 'Boolean' ? typeof v === 'boolean' : isObj(v);
    if (!ok) {
      this.issues.add(f.path, `${keys[0]} has the wrong JSON type: ${JSON.stringify(v)}`, f.element);
      return undefined;
    }
    return v;
  }

  string(f: Found | undefined, kinds: readonly string[]): string | undefined {
    return f ? (this.value(f, kinds) as string | undefined) : undefined;
  }

  code<T extends string>(f: Found | undefined, accepted: readonly T[]): T | undefined {
    const v = this.string(f, ['Code']);
    if (f === undefined || v === undefined) return undefined;
    if ((accepted as readonly string[]).includes(v)) return v as T;
    this.issues.add(f.path, `'${v}' is not one of ${listOf(accepted)}`, f.element);
    return undefined;
  }

  codes<T extends string>(list: Found[], accepted: readonly T[]): T[] {
    return list.flatMap((f) => {
      const v = this.code(f, accepted);
      return v === undefined ? [] : [v];
    });
  }

  resource(f: Found | undefined, required: boolean, parent: Found): string | undefined {
    if (!f) {
      if (required) this.issues.add(parent.path, "has no 'resource' sub-extension", parent.element);
      return undefined;
    }
    const v = this.string(f, ['Uri', 'Canonical', 'Url']);
    if (v === undefined || (!required && v === '*')) return undefined;
    const type = resourceTypeOf(v);
    if (!type) this.issues.add(f.path, `'${v}' is not ${RESOURCE_URI_EXPECTED}`, f.element);
    return type;
  }

  /** At most one of a 0..1 element: reports the repeats. */
  single(list: Found[] | undefined): Found | undefined {
    for (const extra of (list ?? []).slice(1)) this.issues.add(extra.path, 'must not repeat', extra.element);
    return list?.[0];
  }

  /**
   * The sub-extensions of a complex extension, grouped by their (relative) url. Sub-extensions named
   * outside `allowed` are reported, except absolute URLs other than `keepAbsolute` (foreign extensions).
   */
  children(parent: Found, allowed: readonly string[], keepAbsolute: readonly string[] = []): Map<string, Found[]> {
    const groups = new Map<string, Found[]>();
    if (Object.keys(parent.ext).some((k) => k.startsWith('value'))) this.issues.add(parent.path, 'is a complex extension and must not have a value', parent.element);
    const list = parent.ext.extension;
    if (!Array.isArray(list)) {
      this.issues.add(parent.path, 'has no sub-extensions', parent.element);
      return groups;
    }
    list.forEach((ext, i) => {
      const path = `${parent.path}.extension[${i}]`;
      if (!isObj(ext) || typeof ext.url !== 'string') {
        this.issues.add(path, 'must be an extension with a url', parent.element);
        return;
      }
      const name = ext.url;
      if (!allowed.includes(name) && !keepAbsolute.includes(name)) {
        if (!/^[a-z][a-z0-9+.-]*:/i.test(name)) this.issues.add(path, `unknown sub-extension '${name}'; expected ${listOf(allowed)}`, parent.element);
        return;
      }
      const found: Found = { ext, path, element: `${parent.element}.${name === RELATED_QUERY_URL ? 'relatedQuery' : name}` };
      groups.set(name, [...(groups.get(name) ?? []), found]);
    });
    return groups;
  }
}

/** Parses a Basic-wrapped R4 topic; throws CLARION_NOT_A_TOPIC or CLARION_INVALID_TOPIC (one issue per problem). */
export function topicFromBasic(json: unknown): SubscriptionTopic {
  if (!isObj(json)) throw Errors.notATopic({ reason: 'expected a JSON object' });
  if (json.resourceType !== 'Basic') throw Errors.notATopic({ reason: `resourceType is ${JSON.stringify(json.resourceType)}, expected Basic` }, ['resourceType']);
  if (!isTopicBasic(json)) {
    throw Errors.notATopic({ reason: `Basic.code must contain the coding ${FHIR_TYPES_SYSTEM}#SubscriptionTopic` }, ['Basic.code']);
  }
  const issues = new TopicIssues();
  const r = new ExtensionReader(issues);
  const top = topLevel(json, issues);

  const urlExt = r.single(top.get('url'));
  const url = r.string(urlExt, ['Uri', 'Canonical', 'Url']);
  if (!urlExt) issues.add('Basic.extension', 'has no SubscriptionTopic.url extension (required)');
  else if (url !== undefined) {
    issues.url = url;
    if (!isAbsoluteCanonical(url)) issues.add(urlExt.path, `'${url}' must be an absolute URI without '|version'`, 'url');
  }
  const statusExt = r.single(top.get('status'));
  if (!statusExt) issues.add('Basic.modifierExtension', 'has no SubscriptionTopic.status extension (required)');
  const status = r.code<PublicationStatus>(statusExt, PUBLICATION_STATUSES);

  const topic: SubscriptionTopic = {
    url: url ?? '',
    ...opt('version', r.string(r.single(top.get('version')), ['String'])),
    ...opt('name', r.string(r.single(top.get('name')), ['String'])),
    ...opt('title', r.string(r.single(top.get('title')), ['String'])),
    status: status ?? 'unknown',
    ...opt('date', r.string(r.single(top.get('date')), ['DateTime'])),
    ...opt('description', r.string(r.single(top.get('description')), ['Markdown', 'String'])),
    derivedFrom: (top.get('derivedFrom') ?? []).flatMap((f) => r.string(f, ['Canonical', 'Uri']) ?? []),
    resourceTriggers: (top.get('resourceTrigger') ?? []).map((f) => readResourceTrigger(r, f)),
    eventTriggers: (top.get('eventTrigger') ?? []).map((f) => readEventTrigger(r, f)),
    canFilterBy: (top.get('canFilterBy') ?? []).map((f) => readCanFilterBy(r, f)),
    notificationShape: (top.get('notificationShape') ?? []).map((f) => readShape(r, f)),
  };
  issues.throwIfAny();
  return topic;
}

/** Whether a Basic resource is a wrapped SubscriptionTopic (by its code). */
export function isTopicBasic(json: Obj): boolean {
  const code = json.code;
  if (!isObj(code) || !Array.isArray(code.coding)) return false;
  return code.coding.some((c) => isObj(c) && c.system === FHIR_TYPES_SYSTEM && c.code === 'SubscriptionTopic');
}

/** The cross-version extensions of the Basic, grouped by element; reports unknown modifier extensions. */
function topLevel(json: Obj, issues: TopicIssues): Map<string, Found[]> {
  const groups = new Map<string, Found[]>();
  for (const key of ['extension', 'modifierExtension'] as const) {
    const list = json[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      issues.add(`Basic.${key}`, 'must be a JSON array');
      continue;
    }
    list.forEach((ext, i) => {
      const path = `Basic.${key}[${i}]`;
      const element = isObj(ext) ? xverElement(ext.url) : undefined;
      if (!isObj(ext) || element === undefined) {
        if (key === 'modifierExtension') issues.add(path, `unknown modifier extension ${JSON.stringify(isObj(ext) ? ext.url : ext)}: Clarion cannot tell how it changes the topic`);
        return;
      }
      // The IG example carries status as a modifierExtension, other publishers as an extension: both are read.
      if (key === 'modifierExtension' && element !== 'status') issues.add(path, `SubscriptionTopic.${element} is not a modifier; use Basic.extension`, element);
      groups.set(element, [...(groups.get(element) ?? []), { ext, path, element }]);
    });
  }
  return groups;
}

const TRIGGER_PARTS = ['description', 'resource', 'supportedInteraction', 'queryCriteria', 'fhirPathCriteria'] as const;
const QUERY_PARTS = ['previous', 'resultForCreate', 'current', 'resultForDelete', 'requireBoth'] as const;

function readResourceTrigger(r: ExtensionReader, f: Found): ResourceTrigger {
  const c = r.children(f, TRIGGER_PARTS);
  const qcExt = r.single(c.get('queryCriteria'));
  let queryCriteria: QueryCriteria | undefined;
  if (qcExt) {
    const q = r.children(qcExt, QUERY_PARTS);
    const requireBoth = r.single(q.get('requireBoth'));
    queryCriteria = {
      ...opt('previous', r.string(r.single(q.get('previous')), ['String'])),
      ...opt('resultForCreate', r.code<CriteriaResult>(r.single(q.get('resultForCreate')), CRITERIA_RESULTS)),
      ...opt('current', r.string(r.single(q.get('current')), ['String'])),
      ...opt('resultForDelete', r.code<CriteriaResult>(r.single(q.get('resultForDelete')), CRITERIA_RESULTS)),
      ...opt('requireBoth', requireBoth ? (r.value(requireBoth, ['Boolean']) as boolean | undefined) : undefined),
    };
  }
  return {
    ...opt('description', r.string(r.single(c.get('description')), ['Markdown', 'String'])),
    resource: r.resource(r.single(c.get('resource')), true, f) ?? '',
    supportedInteraction: r.codes<TriggerInteraction>(c.get('supportedInteraction') ?? [], TRIGGER_INTERACTIONS),
    ...opt('queryCriteria', queryCriteria),
    ...opt('fhirPathCriteria', r.string(r.single(c.get('fhirPathCriteria')), ['String'])),
  };
}

function readEventTrigger(r: ExtensionReader, f: Found): EventTrigger {
  const c = r.children(f, ['description', 'event', 'resource']);
  const eventExt = r.single(c.get('event'));
  if (!eventExt) r.issues.add(f.path, "has no 'event' sub-extension", f.element);
  return {
    ...opt('description', r.string(r.single(c.get('description')), ['Markdown', 'String'])),
    event: ((eventExt && r.value(eventExt, ['CodeableConcept'])) as CodeableConcept | undefined) ?? {},
    resource: r.resource(r.single(c.get('resource')), true, f) ?? '',
  };
}

function readCanFilterBy(r: ExtensionReader, f: Found): CanFilterBy {
  const c = r.children(f, ['description', 'resource', 'filterParameter', 'filterDefinition', 'comparator', 'modifier']);
  const paramExt = r.single(c.get('filterParameter'));
  const filterParameter = r.string(paramExt, ['String']);
  if (!paramExt) r.issues.add(f.path, "has no 'filterParameter' sub-extension", f.element);
  else if (filterParameter !== undefined) {
    const problem = filterParameterProblem(filterParameter);
    if (problem) r.issues.add(paramExt.path, problem, paramExt.element);
  }
  return {
    ...opt('description', r.string(r.single(c.get('description')), ['Markdown', 'String'])),
    ...opt('resource', r.resource(r.single(c.get('resource')), false, f)),
    filterParameter: filterParameter ?? '',
    ...opt('filterDefinition', r.string(r.single(c.get('filterDefinition')), ['Uri', 'Canonical'])),
    comparator: r.codes<SearchComparator>(c.get('comparator') ?? [], SEARCH_COMPARATORS),
    modifier: r.codes(c.get('modifier') ?? [], SEARCH_MODIFIERS),
  };
}

function readShape(r: ExtensionReader, f: Found): NotificationShape {
  const c = r.children(f, ['resource', 'include', 'revInclude'], [RELATED_QUERY_URL]);
  return {
    resource: r.resource(r.single(c.get('resource')), true, f) ?? '',
    include: (c.get('include') ?? []).flatMap((x) => r.string(x, ['String']) ?? []),
    revInclude: (c.get('revInclude') ?? []).flatMap((x) => r.string(x, ['String']) ?? []),
    relatedQuery: (c.get(RELATED_QUERY_URL) ?? []).flatMap((x): RelatedQuery[] => {
      const q = r.children(x, ['queryType', 'query']);
      const queryExt = r.single(q.get('query'));
      if (!queryExt) r.issues.add(x.path, "has no 'query' sub-extension", x.element);
      const query = r.string(queryExt, ['String']);
      const typeExt = r.single(q.get('queryType'));
      const queryType = typeExt ? (r.value(typeExt, ['Coding']) as Coding | undefined) : undefined;
      return query === undefined ? [] : [{ ...opt('queryType', queryType), query }];
    }),
  };
}
