/**
 * Builds the version-neutral notification from a subscription snapshot and its events, applying the
 * IG's payload rules once for every FHIR version:
 * - `empty`: events carry only number and timestamp (no focus, no additional context), no entries
 *   besides the status, and no topic (SHOULD NOT; `topicForEmpty` overrides, as the IG examples do);
 * - `id-only`: focus (SHALL) and additional-context references; one entry per resource with fullUrl,
 *   request and response but no resource;
 * - `full-resource`: the same with the resource content when it is available (a deleted focus has
 *   only request and response, as the IG requires when content cannot be included).
 * Entry requests mirror the interaction (create → POST Type 201, update → PUT Type/id 200,
 * delete → DELETE Type/id 204); included resources are GET Type/id 200, as in the IG examples.
 * Status queries (`query-status`) carry no resource entries (a `$status` searchset holds only statuses).
 */
import { randomUUID } from 'node:crypto';
import type {
  EventResourceInput, Notification, NotificationEntry, NotificationEvent, NotificationInput, NotificationType, ResourceInteraction,
} from './notification-model.js';

export interface BuildOptions {
  /** Id of the status resource; default a random UUID. */
  newId?: () => string;
  /** Clock for Bundle.timestamp; default the system clock. */
  now?: () => Date;
  /** Include `topic` for `empty` content (the IG says SHOULD NOT; its examples do). Default false. */
  topicForEmpty?: boolean;
}

/** Types whose notifications must list at least one event (R5 sst-1, IG payload rules). */
const NEEDS_EVENTS: ReadonlySet<NotificationType> = new Set(['event-notification', 'query-event']);

/** Thrown for input the IG does not allow (a caller bug, not a client error). */
export class NotificationInputError extends Error {
  override name = 'NotificationInputError';
}

export function buildNotification(input: NotificationInput, options: BuildOptions = {}): Notification {
  const base = input.baseUrl.replace(/\/+$/, '');
  const { subscription: sub, type } = input;
  const events = input.events ?? [];
  if (NEEDS_EVENTS.has(type) && events.length === 0) throw new NotificationInputError(`a ${type} notification needs at least one event`);
  checkCount('eventsSinceSubscriptionStart', input.eventsSinceSubscriptionStart, 0);
  if (sub.id === '' || /[/?#]/.test(sub.id)) throw new NotificationInputError(`subscription id '${sub.id}' is not a FHIR id`);

  const withRefs = sub.content !== 'empty';
  const entries = new EntryList();
  const outEvents: NotificationEvent[] = events.map((e) => {
    checkCount('eventNumber', e.eventNumber, 1);
    const ev: NotificationEvent = { eventNumber: e.eventNumber, ...(e.timestamp ? { timestamp: e.timestamp } : {}), additionalContext: [] };
    if (!withRefs) return ev;
    if (!e.focus) throw new NotificationInputError(`event ${e.eventNumber}: the focus SHALL be present for ${sub.content} content`);
    const focus = resolve(e.focus, base, `event ${e.eventNumber} focus`);
    ev.focus = focus.fullUrl;
    ev.additionalContext = (e.additionalContext ?? []).map((c, i) => resolve({ interaction: 'read', ...c }, base, `event ${e.eventNumber} additionalContext[${i}]`).fullUrl);
    if (type !== 'query-status') {
      entries.add(focus, sub.content === 'full-resource');
      (e.additionalContext ?? []).forEach((c) => entries.add(resolve({ interaction: 'read', ...c }, base, ''), sub.content === 'full-resource'));
    }
    return ev;
  });

  const id = (options.newId ?? randomUUID)();
  return {
    id,
    timestamp: (options.now?.() ?? new Date()).toISOString(),
    type,
    status: sub.status,
    content: sub.content,
    subscriptionId: sub.id,
    subscriptionReference: `${base}/Subscription/${sub.id}`,
    statusRequestUrl: `${base}/Subscription/${sub.id}/$status`,
    ...(withRefs || options.topicForEmpty ? { topic: sub.topicUrl } : {}),
    eventsSinceSubscriptionStart: input.eventsSinceSubscriptionStart,
    events: outEvents,
    errors: input.errors ?? [],
    entries: entries.list,
  };
}

function checkCount(name: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) throw new NotificationInputError(`${name} must be an integer ≥ ${min}, got ${n}`);
}

interface Resolved {
  fullUrl: string;
  type: string;
  id: string;
  interaction: ResourceInteraction;
  input: EventResourceInput;
}

/** `Type/id`, `Type/id/_history/v`, or an absolute URL ending so. */
const REFERENCE = /^(?:(.*)\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/** Makes a resource reference absolute (and version-free: bdl-8 forbids `_history` in fullUrl). */
function resolve(r: EventResourceInput, base: string, what: string): Resolved {
  const ref = r.reference ?? (r.resource?.id ? `${r.resource.resourceType}/${r.resource.id}` : undefined);
  const m = ref === undefined ? null : REFERENCE.exec(ref);
  if (!m) throw new NotificationInputError(`${what}: ${ref === undefined ? 'needs a reference or a resource with an id' : `'${ref}' is not a Type/id reference`}`);
  const [, prefix, type, id] = m;
  if (prefix !== undefined && !/^https?:\/\//.test(prefix)) throw new NotificationInputError(`${what}: '${ref}' is neither relative nor an absolute http(s) URL`);
  if (r.resource && (r.resource.resourceType !== type || (r.resource.id !== undefined && r.resource.id !== id))) {
    throw new NotificationInputError(`${what}: the reference '${ref}' does not match the resource ${r.resource.resourceType}/${r.resource.id}`);
  }
  return { fullUrl: `${prefix ?? base}/${type}/${id}`, type, id, interaction: r.interaction ?? 'read', input: r };
}

/** Entries without duplicates (the same resource version is carried once per Bundle). */
class EntryList {
  readonly list: NotificationEntry[] = [];
  private readonly seen = new Set<string>();

  add(r: Resolved, withContent: boolean): void {
    const key = `${r.fullUrl}|${r.input.resource?.meta?.versionId ?? ''}|${r.interaction}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const resource = withContent && r.interaction !== 'delete' ? r.input.resource : undefined;
    this.list.push({ fullUrl: r.fullUrl, ...(resource ? { resource } : {}), ...requestAndResponse(r) });
  }
}

function requestAndResponse(r: Resolved): Pick<NotificationEntry, 'request' | 'response'> {
  switch (r.interaction) {
    case 'create':
      return { request: { method: 'POST', url: r.type }, response: { status: '201' } };
    case 'update':
      return { request: { method: 'PUT', url: `${r.type}/${r.id}` }, response: { status: '200' } };
    case 'delete':
      return { request: { method: 'DELETE', url: `${r.type}/${r.id}` }, response: { status: '204' } };
    case 'read':
      return { request: { method: 'GET', url: `${r.type}/${r.id}` }, response: { status: '200' } };
  }
}
