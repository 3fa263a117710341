/**
 * HTTP wiring of the Subscriptions Backport operations `$status` (type and instance level) and
 * `$events` (instance level), GET and POST, and of the event-log retention task.
 *
 * Decisions (see also src/notify/status-report.ts):
 * - `$status` at type level: `id` and `status` values are OR-joined within each parameter (repeated,
 *   or comma-separated), AND-joined across; no match is an empty searchset (R5: "zero or more"),
 *   not an error. At instance level they are ignored; an unknown id is 404, a deleted one 410.
 *   Status is the pipeline's effective status (the resource's own before the pipeline has seen it).
 * - `$status` answers in the subscription's notification version (channel.payload fhirVersion); at
 *   type level the common version of the matched subscriptions, R4 when they differ or none match.
 * - `$events` numbers are inclusive, whole numbers ≥ 0; anything else is 400 naming the parameter;
 *   since > until is 400. Omitted bounds mean "oldest retained" and "last allocated".
 * - Retention: a range whose existing events have all been pruned is 410 (CLARION_EVENTS_NOT_RETAINED)
 *   naming the oldest retained number and the policy. A range only partly retained returns what is
 *   retained, with a warning OperationOutcome in the status entry's response.outcome (R5:
 *   Bundle.issues). A range with no events (e.g. beyond the last one) answers a `query-status`
 *   notification, since a query-event must list an event.
 * - `content` hint: honoured when it asks for no more than the subscription's content level, capped to
 *   that level otherwise (never an error); an unknown code is 400.
 * - At most `maxEventsPerCall` events per answer, oldest first, with a `next` link for the rest.
 * - Unknown parameters are ignored, or 400 under `Prefer: handling=strict` (as for search).
 */
import { buildNotification, type BuildOptions } from '../notify/bundle-builder.js';
import type { FhirResource, PayloadContent, SubscriptionStatusCode } from '../notify/notification-model.js';
import { contentKeys, effectiveContent, eventReportInput, statusReportInput, type SubscriptionFacts } from '../notify/status-report.js';
import { EventLog, resourceKey, type SubscriptionWithState } from '../subscriptions/event-log.js';
import { startRetentionTask, type RetentionTask } from '../subscriptions/event-retention.js';
import { Errors } from '../fhir/errors.js';
import { subscriptionPayloadSettingsR4, type NotificationVersion, type SubscriptionPayloadSettings } from '../versions/r4/subscription-payload-r4.js';
import { eventsBundle, statusSearchsetBundle } from '../versions/subscription-operation-bundles.js';
import type { Clarion } from './clarion.js';
import type { FhirResponse } from './fhir-exchange.js';
import { operationParameters } from './operation-parameters.js';
import type { OperationInvocation } from './operations.js';
import { isValidId, toQueryString } from './request-parsing.js';

export interface SubscriptionOperationsOptions {
  /** Most events one `$events` answer carries (default 1000). */
  maxEventsPerCall?: number;
  /** Clock for Bundle.timestamp (default the system clock). */
  now?: () => Date;
}

const STATUS_CODES: ReadonlySet<string> = new Set(['requested', 'active', 'error', 'off']);
const CONTENT_CODES: readonly PayloadContent[] = ['empty', 'id-only', 'full-resource'];
const EVENTS_PARAMS = ['eventsSinceNumber', 'eventsUntilNumber', 'content'];

export function installSubscriptionOperations(clarion: Pick<Clarion, 'operations'>, options: SubscriptionOperationsOptions = {}): void {
  const maxEvents = options.maxEventsPerCall ?? 1000;
  if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) throw new RangeError(`maxEventsPerCall must be a whole number ≥ 1, got ${maxEvents}`);
  const build: BuildOptions = options.now ? { now: options.now } : {};
  clarion.operations.register({
    name: 'status',
    levels: ['type', 'instance'],
    types: ['Subscription'],
    methods: ['GET', 'POST'],
    handler: (inv) => statusOperation(inv, build),
  });
  clarion.operations.register({
    name: 'events',
    levels: ['instance'],
    types: ['Subscription'],
    methods: ['GET', 'POST'],
    handler: (inv) => eventsOperation(inv, build, maxEvents),
  });
}

/** Starts pruning the event log every `intervalMs` with config.subscriptions.eventRetention. */
export function startEventRetention(clarion: Pick<Clarion, 'db' | 'config' | 'logger'>, intervalMs: number): RetentionTask {
  return startRetentionTask(new EventLog(clarion.db), {
    intervalMs,
    policy: clarion.config.subscriptions.eventRetention,
    onPruned: (r) => {
      if (r.deleted > 0) clarion.logger.debug({ deleted: r.deleted }, 'subscription events pruned');
    },
    onError: (err) => clarion.logger.error({ err }, 'subscription event retention failed'),
  });
}

// -------------------------------------------------------------------------------------------------
// $status

async function statusOperation(inv: OperationInvocation, build: BuildOptions): Promise<FhirResponse> {
  const log = new EventLog(inv.store.queryable);
  let subs: SubscriptionWithState[];
  if (inv.level === 'instance') {
    subs = await findOne(inv, log);
  } else {
    const params = checkedParameters(inv, ['id', 'status']);
    const ids = listValues(params, 'id');
    for (const id of ids) {
      if (!isValidId(id)) throw Errors.invalidParameter({ name: 'id', reason: `'${id}' is not a FHIR id ([A-Za-z0-9\\-\\.]{1,64})` }, ['id']);
    }
    const statuses = listValues(params, 'status');
    for (const s of statuses) {
      if (!STATUS_CODES.has(s)) throw Errors.invalidParameter({ name: 'status', reason: `'${s}' is not a Subscription status; accepted: ${[...STATUS_CODES].join(', ')}` }, ['status']);
    }
    subs = await log.findSubscriptions(ids.length > 0 ? ids : 'all', statuses);
  }
  const reports = subs.map((s) => reportOf(s));
  const statuses = reports.map((r) => buildNotification(statusReportInput(r.facts, inv.baseUrl), { ...build, topicForEmpty: true }));
  const versions = new Set(reports.map((r) => r.settings.notificationVersion));
  const version: NotificationVersion = versions.size === 1 ? [...versions][0] : 'R4';
  const body = statusSearchsetBundle(version, statuses, { timestamp: (build.now?.() ?? new Date()).toISOString(), selfUrl: selfUrl(inv) });
  return { status: 200, body: body as unknown as NonNullable<FhirResponse['body']> };
}

// -------------------------------------------------------------------------------------------------
// $events

async function eventsOperation(inv: OperationInvocation, build: BuildOptions, maxEvents: number): Promise<FhirResponse> {
  const params = checkedParameters(inv, EVENTS_PARAMS);
  const since = eventNumberParam(params, 'eventsSinceNumber');
  const until = eventNumberParam(params, 'eventsUntilNumber');
  if (since !== undefined && until !== undefined && since > until) throw Errors.invalidEventRange({ since, until }, ['eventsSinceNumber', 'eventsUntilNumber']);
  const hint = contentParam(params);

  const log = new EventLog(inv.store.queryable);
  const [sub] = await findOne(inv, log);
  const { facts, settings } = reportOf(sub);
  const id = sub.id;
  const last = facts.eventsSinceStart;
  // Event numbers start at 1; bounds beyond the last allocated event select nothing more.
  const from = Math.max(since ?? 1, 1);
  const to = Math.min(until ?? last, last);

  // Listing from `from` (not from the oldest retained number) and judging by what comes back keeps
  // the answer right if a prune runs concurrently: the log is always a contiguous suffix.
  const rows = from <= to ? await log.listEvents(id, from, to, maxEvents + 1) : [];
  const policy = retentionText(inv);
  // With no bounds the answer is "all retained events", which may be none; only a range the client
  // named can be gone.
  if (from <= to && rows.length === 0 && (since !== undefined || until !== undefined)) {
    const { oldestRetained } = await log.retentionBounds(id);
    throw Errors.eventsNotRetained({
      id,
      requested: from === to ? `${from}` : `${from}–${to}`,
      retained: oldestRetained === null ? `no events are retained (the last event number is ${last})` : `the oldest retained event is ${oldestRetained}`,
      policy,
    }, ['eventsSinceNumber']);
  }
  const events = rows.slice(0, maxEvents);
  const first = events[0]?.eventNumber;
  const warning =
    since !== undefined && first !== undefined && first > from
      ? `Events ${from}${first - 1 > from ? `–${first - 1}` : ''} are no longer retained and are not included; the oldest retained event is ${first} (retention: ${policy})`
      : undefined;

  const content = effectiveContent(settings.content, hint);
  const loaded = await log.loadResources(contentKeys(events, content));
  const notification = buildNotification(
    eventReportInput(facts, events, { content, baseUrl: inv.baseUrl, lookup: (k) => loaded.get(resourceKey(k)) as FhirResource | undefined }),
    build,
  );
  const nextUrl =
    rows.length > maxEvents
      ? `${inv.baseUrl}/Subscription/${id}/$events?${toQueryString([
          ['eventsSinceNumber', String(events[events.length - 1].eventNumber + 1)],
          ['eventsUntilNumber', String(to)],
          ...(hint ? ([['content', hint]] as [string, string][]) : []),
        ])}`
      : undefined;
  const body = eventsBundle(settings.notificationVersion, notification, { ...(warning ? { warning } : {}), ...(nextUrl ? { nextUrl } : {}) });
  return { status: 200, body: body as unknown as NonNullable<FhirResponse['body']> };
}

// -------------------------------------------------------------------------------------------------
// Shared

/** The instance's Subscription with its state; 404 if unknown, 410 if deleted (from the store). */
async function findOne(inv: OperationInvocation, log: EventLog): Promise<[SubscriptionWithState]> {
  const id = inv.id as string;
  const found = isValidId(id) ? await log.findSubscriptions([id]) : [];
  if (found[0]) return [found[0]];
  await inv.store.read('Subscription', id); // throws the standard 404 / 410
  throw Errors.notFound({ type: 'Subscription', id });
}

function reportOf(sub: SubscriptionWithState): { facts: SubscriptionFacts; settings: SubscriptionPayloadSettings } {
  const settings = subscriptionPayloadSettingsR4(sub.resource);
  const rawStatus = sub.state?.status ?? settings.status;
  const status: SubscriptionStatusCode = rawStatus !== undefined && STATUS_CODES.has(rawStatus) ? (rawStatus as SubscriptionStatusCode) : 'error';
  return {
    settings,
    facts: {
      id: sub.id,
      topicUrl: sub.state?.topicUrl ?? settings.topicUrl ?? '',
      status,
      content: settings.content,
      eventsSinceStart: sub.state?.eventsSinceStart ?? 0,
      error: sub.state ? { code: sub.state.errorCode, message: sub.state.errorMessage } : { message: settings.error ?? null },
    },
  };
}

/** Operation parameters, with unknown names refused under `Prefer: handling=strict`. */
function checkedParameters(inv: OperationInvocation, known: readonly string[]): [string, string][] {
  const params = operationParameters(inv.request);
  if (inv.request.prefer.handling === 'strict') {
    const unknown = params.find(([k]) => !known.includes(k));
    if (unknown) throw Errors.invalidParameter({ name: unknown[0], reason: `it is not a parameter of $${inv.request.operation?.name}; accepted: ${known.join(', ')}` }, [unknown[0]]);
  }
  return params;
}

/** All values of a repeating parameter; a value may also list several, comma-separated. */
function listValues(params: [string, string][], name: string): string[] {
  return params.filter(([k]) => k === name).flatMap(([, v]) => v.split(',').map((s) => s.trim()).filter((s) => s !== ''));
}

function singleValue(params: [string, string][], name: string): string | undefined {
  const values = params.filter(([k]) => k === name).map(([, v]) => v);
  if (values.length > 1) throw Errors.invalidParameter({ name, reason: `it may be given once, but was given ${values.length} times` }, [name]);
  return values[0];
}

function eventNumberParam(params: [string, string][], name: string): number | undefined {
  const raw = singleValue(params, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(n)) {
    throw Errors.invalidParameter({ name, reason: `'${raw}' is not an event number (a whole number ≥ 0, e.g. 12)` }, [name]);
  }
  return n;
}

function contentParam(params: [string, string][]): PayloadContent | undefined {
  const raw = singleValue(params, 'content');
  if (raw === undefined) return undefined;
  if (!(CONTENT_CODES as readonly string[]).includes(raw)) {
    throw Errors.invalidParameter({ name: 'content', reason: `'${raw}' is not a backport-content-code-system code; accepted: ${CONTENT_CODES.join(', ')}` }, ['content']);
  }
  return raw as PayloadContent;
}

function retentionText(inv: OperationInvocation): string {
  const { maxCount, maxAgeDays } = inv.config.subscriptions.eventRetention;
  return `the newest ${maxCount} events per subscription, none older than ${maxAgeDays} days`;
}

function selfUrl(inv: OperationInvocation): string {
  const path = `${inv.baseUrl}/Subscription${inv.id ? `/${inv.id}` : ''}/$${inv.request.operation?.name ?? 'status'}`;
  const query = inv.request.method === 'GET' ? toQueryString(operationParameters(inv.request)) : '';
  return query ? `${path}?${query}` : path;
}
