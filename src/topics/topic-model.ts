/**
 * The version-neutral SubscriptionTopic model (R5 semantics). Every wire form (R5 and R4B
 * SubscriptionTopic, R4 Basic with cross-version extensions) is converted to and from this shape by
 * src/versions; nothing in the core sees a wire form.
 *
 * Normalisations (so that the same topic in different wire forms gives equal models):
 * - `resource` elements hold a resource type name (`Encounter`), not the StructureDefinition URL the
 *   wire forms may use (`http://hl7.org/fhir/StructureDefinition/Encounter`);
 * - list elements are always present (empty when absent on the wire);
 * - R4B's single `canFilterBy.modifier` list (which mixes comparators and modifiers) is split into
 *   R5's `comparator` and `modifier`.
 */

export type PublicationStatus = 'draft' | 'active' | 'retired' | 'unknown';
export type TriggerInteraction = 'create' | 'update' | 'delete';
/** What a query criterion evaluates to when there is no resource to test (create: previous, delete: current). */
export type CriteriaResult = 'test-passes' | 'test-fails';
/** R5 search-comparator codes. */
export type SearchComparator = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';

export interface QueryCriteria {
  /** Search criteria (no base, no resource type) applied to the state before the change. */
  previous?: string;
  resultForCreate?: CriteriaResult;
  /** Search criteria applied to the state after the change. */
  current?: string;
  resultForDelete?: CriteriaResult;
  /** true: both tests must pass; otherwise either is enough. */
  requireBoth?: boolean;
}

export interface ResourceTrigger {
  description?: string;
  /** Resource type name, e.g. `Encounter`. */
  resource: string;
  /** Interactions that can trigger; empty means any. */
  supportedInteraction: TriggerInteraction[];
  queryCriteria?: QueryCriteria;
  /** FHIRPath over `%previous` and `%current`. */
  fhirPathCriteria?: string;
}

export interface Coding {
  system?: string;
  version?: string;
  code?: string;
  display?: string;
}

export interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}

/** Kept so that topics round-trip; Clarion does not raise events of its own (yet). */
export interface EventTrigger {
  description?: string;
  event: CodeableConcept;
  resource: string;
}

export interface CanFilterBy {
  description?: string;
  /** Resource type the filter applies to; absent: any resource of the topic. */
  resource?: string;
  /** Name used in Subscription filters: a search parameter code or a topic-defined name. */
  filterParameter: string;
  /** Canonical URL of the SearchParameter (or shared concept) that defines the filter. */
  filterDefinition?: string;
  comparator: SearchComparator[];
  /** R5 search-modifier-code values (`not`, `missing`, `identifier`, …). */
  modifier: string[];
}

/** 1.2.0-ballot / R6 `relatedQuery`, kept so that topics round-trip. */
export interface RelatedQuery {
  queryType?: Coding;
  query: string;
}

export interface NotificationShape {
  /** The focus resource type this shape applies to. */
  resource: string;
  /** `_include` directives, e.g. `Encounter:patient&iterate=Patient.link`. */
  include: string[];
  /** `_revinclude` directives. */
  revInclude: string[];
  relatedQuery: RelatedQuery[];
}

export interface SubscriptionTopic {
  url: string;
  version?: string;
  name?: string;
  title?: string;
  status: PublicationStatus;
  date?: string;
  description?: string;
  derivedFrom: string[];
  resourceTriggers: ResourceTrigger[];
  eventTriggers: EventTrigger[];
  canFilterBy: CanFilterBy[];
  notificationShape: NotificationShape[];
}

/** The registry key of a topic: `url|version`, or `url` for an unversioned topic. */
export function topicKey(url: string, version?: string): string {
  return version ? `${url}|${version}` : url;
}

/** Splits a canonical reference `url|version` (the version part is optional). */
export function parseCanonical(canonical: string): { url: string; version?: string } {
  const bar = canonical.indexOf('|');
  return bar < 0 ? { url: canonical } : { url: canonical.slice(0, bar), version: canonical.slice(bar + 1) || undefined };
}

/** Resource types a topic can notify about (triggers' and event triggers' types), without duplicates. */
export function topicResourceTypes(topic: SubscriptionTopic): string[] {
  return [...new Set([...topic.resourceTriggers.map((t) => t.resource), ...topic.eventTriggers.map((t) => t.resource)])];
}
