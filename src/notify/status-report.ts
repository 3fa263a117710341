/**
 * The neutral notifications that answer `$status` (`query-status`) and `$events` (`query-event`),
 * built from what the server knows about a subscription and from its event log. Rules (IG 1.1.0 and
 * the R5 SubscriptionStatus notes):
 * - events-since-subscription-start is the number of events allocated so far; a query never
 *   increments it;
 * - errors are reported while the subscription is `error` or `off` (an active subscription has no
 *   current error, even if the delivery worker keeps the last one for diagnostics), as CodeableConcepts
 *   in http://terminology.hl7.org/CodeSystem/subscription-error when the recorded code is one of its
 *   codes, the recorded message as text;
 * - query-event events keep their original number and timestamp; focus and additional context follow
 *   the content level; for full-resource the focus is the version the event recorded (from history),
 *   and a deleted focus has no content.
 */
import type {
  CodeableConcept, EventResourceInput, FhirResource, NotificationEventInput, NotificationInput, PayloadContent, SubscriptionStatusCode,
} from './notification-model.js';

export const SUBSCRIPTION_ERROR_SYSTEM = 'http://terminology.hl7.org/CodeSystem/subscription-error';
export const SUBSCRIPTION_ERROR_CODES: ReadonlySet<string> = new Set(['dns-resolution-error', 'no-response', 'error-response']);

/** What the server knows about one subscription when it reports on it. */
export interface SubscriptionFacts {
  id: string;
  topicUrl: string;
  status: SubscriptionStatusCode;
  /** The subscription's content level. */
  content: PayloadContent;
  /** Last event number allocated (0 before the first event). */
  eventsSinceStart: number;
  /** The last delivery error recorded (code from subscription-error, or another code, and/or text). */
  error?: { code?: string | null; message?: string | null };
}

/** One logged event (the event log's rows fit this shape). */
export interface LoggedEventInput {
  eventNumber: number;
  occurredAt: Date;
  focus: { type: string; id: string; version: number };
  interaction: 'create' | 'update' | 'delete';
  additionalContext: { reference: string; version?: number }[];
}

/** A resource to load for full-resource content: `version` undefined = the current version. */
export interface ContentKey {
  type: string;
  id: string;
  version?: number;
}

/** `Type/id` or `Type/id/_history/v` → loaded content (absent when deleted or unknown). */
export type ContentLookup = (key: ContentKey) => FhirResource | undefined;

const LEVEL: Record<PayloadContent, number> = { empty: 0, 'id-only': 1, 'full-resource': 2 };

/**
 * The content level of an `$events` answer: the client's hint when it asks for no more than the
 * subscription allows, otherwise the subscription's level. The subscription's level is the disclosure
 * the server agreed to for this subscription, so `$events` never exceeds it (the IG lets servers
 * ignore the hint).
 */
export function effectiveContent(subscriptionContent: PayloadContent, hint?: PayloadContent): PayloadContent {
  if (hint === undefined) return subscriptionContent;
  return LEVEL[hint] <= LEVEL[subscriptionContent] ? hint : subscriptionContent;
}

/** The recorded error as a status `error` CodeableConcept; undefined when nothing is recorded. */
export function subscriptionErrorConcept(code?: string | null, message?: string | null): CodeableConcept | undefined {
  const known = code && SUBSCRIPTION_ERROR_CODES.has(code) ? code : undefined;
  // An unknown code is kept readable in the text rather than put in a code system it is not from.
  const text = [code && !known ? code : undefined, message ?? undefined].filter((s): s is string => !!s).join(': ');
  if (!known && !text) return undefined;
  return { ...(known ? { coding: [{ system: SUBSCRIPTION_ERROR_SYSTEM, code: known }] } : {}), ...(text ? { text } : {}) };
}

function errorsOf(facts: SubscriptionFacts): CodeableConcept[] {
  if (facts.status !== 'error' && facts.status !== 'off') return [];
  const concept = subscriptionErrorConcept(facts.error?.code, facts.error?.message);
  return concept ? [concept] : [];
}

/** The `query-status` notification of one subscription (no events: the IG makes them optional). */
export function statusReportInput(facts: SubscriptionFacts, baseUrl: string): NotificationInput {
  return {
    subscription: { id: facts.id, topicUrl: facts.topicUrl, status: facts.status, content: facts.content },
    type: 'query-status',
    eventsSinceSubscriptionStart: facts.eventsSinceStart,
    errors: errorsOf(facts),
    baseUrl,
  };
}

/** `Type/id`, `Type/id/_history/v` or an absolute http(s) URL ending so (what the builder accepts). */
const REFERENCE = /^(?:https?:\/\/.*\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** The resources whose content a `full-resource` answer carries (none for other levels). */
export function contentKeys(events: readonly LoggedEventInput[], content: PayloadContent): ContentKey[] {
  if (content !== 'full-resource') return [];
  const keys: ContentKey[] = [];
  for (const e of events) {
    if (e.interaction !== 'delete') keys.push({ type: e.focus.type, id: e.focus.id, version: e.focus.version });
    for (const c of e.additionalContext) {
      const m = REFERENCE.exec(c.reference);
      if (m) keys.push({ type: m[1], id: m[2], ...(c.version !== undefined ? { version: c.version } : {}) });
    }
  }
  return keys;
}

/**
 * The `query-event` notification for the given events, at `content` (see effectiveContent). With no
 * events the answer is a `query-status` notification instead: a query-event must list at least one
 * event (R5 sst-1), and the status still tells the client how many events exist.
 */
export function eventReportInput(
  facts: SubscriptionFacts,
  events: readonly LoggedEventInput[],
  options: { content: PayloadContent; baseUrl: string; lookup?: ContentLookup },
): NotificationInput {
  const lookup = options.content === 'full-resource' ? options.lookup : undefined;
  const resourceFor = (key: ContentKey): { resource?: FhirResource } => {
    const r = lookup?.(key);
    return r ? { resource: r } : {};
  };
  const outEvents: NotificationEventInput[] = events.map((e) => {
    const focus: EventResourceInput = {
      reference: `${e.focus.type}/${e.focus.id}`,
      interaction: e.interaction,
      ...(e.interaction !== 'delete' ? resourceFor(e.focus) : {}),
    };
    const additionalContext: EventResourceInput[] = [];
    for (const c of e.additionalContext) {
      const m = REFERENCE.exec(c.reference);
      // References the log cannot resolve to Type/id (contained, urn:) are not reportable.
      if (!m) continue;
      additionalContext.push({ reference: c.reference, interaction: 'read', ...resourceFor({ type: m[1], id: m[2], ...(c.version !== undefined ? { version: c.version } : {}) }) });
    }
    return { eventNumber: e.eventNumber, timestamp: e.occurredAt.toISOString(), focus, additionalContext };
  });
  return {
    subscription: { id: facts.id, topicUrl: facts.topicUrl, status: facts.status, content: options.content },
    type: outEvents.length > 0 ? 'query-event' : 'query-status',
    eventsSinceSubscriptionStart: facts.eventsSinceStart,
    events: outEvents,
    errors: errorsOf(facts),
    baseUrl: options.baseUrl,
  };
}
