/**
 * Test set-up for the `$status`/`$events` operations without the event pipeline: Subscriptions are
 * created through the store, their state and events are inserted with SQL (the columns agreed for
 * subscription_state / subscription_events), and focus resources are real (so versions exist).
 */
import type { Resource } from 'fhir/r4.js';
import type { PayloadContent } from '../../src/notify/notification-model.js';
import type { Queryable } from '../../src/store/db.js';
import type { ResourceStore } from '../../src/store/resource-store.js';

export const TOPIC = 'http://example.org/FHIR/SubscriptionTopic/encounter-complete';
const EXT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';

export interface SubscriptionOptions {
  id?: string;
  content?: PayloadContent;
  /** Status of the resource itself (the state row overrides it). */
  status?: 'requested' | 'active' | 'error' | 'off';
  /** channel.payload, e.g. `application/fhir+json; fhirVersion=4.3`. */
  payload?: string;
  error?: string;
}

export function r4Subscription(o: SubscriptionOptions = {}): Resource {
  return {
    resourceType: 'Subscription',
    ...(o.id ? { id: o.id } : {}),
    status: o.status ?? 'requested',
    reason: 'test',
    criteria: TOPIC,
    ...(o.error ? { error: o.error } : {}),
    channel: {
      type: 'rest-hook',
      endpoint: 'https://example.org/hook',
      payload: o.payload ?? 'application/fhir+json',
      _payload: { extension: [{ url: `${EXT}/backport-payload-content`, valueCode: o.content ?? 'id-only' }] },
    },
  } as Resource;
}

export async function createSubscription(store: ResourceStore, o: SubscriptionOptions = {}): Promise<string> {
  const { resource } = await store.create(r4Subscription(o), o.id ? { id: o.id } : {});
  return resource.id as string;
}

export interface StateOptions {
  status: string;
  eventsSinceStart?: number;
  topicUrl?: string;
  errorCode?: string | null;
  errorMessage?: string | null;
}

export async function upsertState(q: Queryable, subscriptionId: string, s: StateOptions): Promise<void> {
  await q.query(
    `INSERT INTO subscription_state (subscription_id, topic_url, channel_type, status, events_since_start, error_code, error_message, error_at)
     VALUES ($1, $2, 'rest-hook', $3, $4, $5, $6, CASE WHEN $5::text IS NULL AND $6::text IS NULL THEN NULL ELSE now() END)
     ON CONFLICT (subscription_id) DO UPDATE SET topic_url = EXCLUDED.topic_url, status = EXCLUDED.status,
       events_since_start = EXCLUDED.events_since_start, error_code = EXCLUDED.error_code, error_message = EXCLUDED.error_message, error_at = EXCLUDED.error_at`,
    [subscriptionId, s.topicUrl ?? TOPIC, s.status, s.eventsSinceStart ?? 0, s.errorCode ?? null, s.errorMessage ?? null],
  );
}

export interface EventRow {
  eventNumber: number;
  occurredAt?: Date;
  focus: { type: string; id: string; version: number };
  interaction?: 'create' | 'update' | 'delete';
  additionalContext?: { reference: string; version?: number }[];
}

export async function insertEvents(q: Queryable, subscriptionId: string, events: EventRow[]): Promise<void> {
  for (const e of events) {
    await q.query(
      `INSERT INTO subscription_events (subscription_id, event_number, occurred_at, change_seq, focus_type, focus_id, focus_version, interaction, additional_context)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)`,
      [
        subscriptionId,
        e.eventNumber,
        (e.occurredAt ?? new Date()).toISOString(),
        e.eventNumber,
        e.focus.type,
        e.focus.id,
        e.focus.version,
        e.interaction ?? 'update',
        JSON.stringify(e.additionalContext ?? []),
      ],
    );
  }
}

/** `n` events numbered from `first`, all about one focus version, `minutesApart` apart ending at `end`. */
export function eventSeries(first: number, n: number, focus: EventRow['focus'], end = new Date(), minutesApart = 1): EventRow[] {
  return Array.from({ length: n }, (_, i) => ({
    eventNumber: first + i,
    occurredAt: new Date(end.getTime() - (n - 1 - i) * minutesApart * 60_000),
    focus,
  }));
}
