/**
 * Element-level rules of a SubscriptionTopic (R5 semantics), shared by every wire-form parser in
 * src/versions so that an R5, R4B or R4 Basic topic is accepted or rejected for the same reasons. Each
 * parser reports problems at its own wire path (`SubscriptionTopic.resourceTrigger[0].resource`,
 * `Basic.extension[6].extension[1]`) through a TopicIssues collector, which throws one error listing
 * every problem at the end.
 */
import { Errors, fhirErrorFromIssues, type IssueInput } from '../fhir/errors.js';
import type { CriteriaResult, PublicationStatus, SearchComparator, TriggerInteraction } from './topic-model.js';

export const PUBLICATION_STATUSES: readonly PublicationStatus[] = ['draft', 'active', 'retired', 'unknown'];
export const TRIGGER_INTERACTIONS: readonly TriggerInteraction[] = ['create', 'update', 'delete'];
export const CRITERIA_RESULTS: readonly CriteriaResult[] = ['test-passes', 'test-fails'];
export const SEARCH_COMPARATORS: readonly SearchComparator[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];
/** R5 `search-modifier-code`. */
export const SEARCH_MODIFIERS: readonly string[] = [
  'missing', 'exact', 'contains', 'not', 'text', 'in', 'not-in', 'below', 'above', 'type', 'identifier', 'of-type', 'code-text', 'text-advanced', 'iterate',
];

const CORE_SD_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';
const TYPE_NAME = /^[A-Z][A-Za-z0-9]*$/;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s|]+$/;

/** Collects problems found while reading one topic; `throwIfAny` turns them into one CLARION_INVALID_TOPIC. */
export class TopicIssues {
  private readonly issues: IssueInput[] = [];
  /** Canonical URL of the topic being read, once known (for the messages). */
  url = '(no url)';

  /** `element` names the topic element when the path alone does not (R4 Basic extension paths). */
  add(path: string, reason: string, element?: string): void {
    this.issues.push({ diagnostics: `${path}${element ? ` (${element})` : ''}: ${reason}`, expression: [path] });
  }

  get count(): number {
    return this.issues.length;
  }

  throwIfAny(): void {
    if (this.issues.length === 0) return;
    const prefix = `Topic ${this.url} is invalid: `;
    throw fhirErrorFromIssues(
      Errors.invalidTopic,
      this.issues.map((i) => ({ ...i, diagnostics: prefix + i.diagnostics })),
    );
  }
}

/**
 * The resource type named by a topic `resource` element (a type name, or a core StructureDefinition URL
 * as the topics' `uri` binding allows), or undefined when it is neither.
 */
export function resourceTypeOf(uri: string): string | undefined {
  const name = uri.startsWith(CORE_SD_PREFIX) ? uri.slice(CORE_SD_PREFIX.length) : uri;
  return TYPE_NAME.test(name) ? name : undefined;
}

export const RESOURCE_URI_EXPECTED = `a resource type name (Encounter) or ${CORE_SD_PREFIX}<type>`;

export function isAbsoluteCanonical(url: string): boolean {
  return ABSOLUTE_URI.test(url);
}

/** Why a `canFilterBy.filterParameter` is not a usable name, or undefined when it is. */
export function filterParameterProblem(name: string): string | undefined {
  if (name.trim() === '') return 'must not be empty';
  if (/[:=&?\s]/.test(name)) return `'${name}' must be a bare parameter name (chains like 'patient.gender' are allowed; no modifiers, values, '&', '?' or spaces)`;
  return undefined;
}

/** `codes` joined for an "accepted: …" message. */
export function listOf(codes: readonly string[]): string {
  return codes.join(', ');
}
