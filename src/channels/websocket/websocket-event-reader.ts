/**
 * What the websocket hub reads per wake, for all bound subscriptions at once (never per socket): the
 * pipeline state of those with something new in one query, then their new events in one query, then,
 * for full-resource subscriptions, the content of those events in one or two queries.
 */
import type { LoggedEventInput } from '../../notify/status-report.js';
import type { Queryable } from '../../store/db.js';

export interface BoundState {
  status: string;
  channelType: string;
  subscriptionVersion: number;
  /** Last event number allocated. */
  eventsSinceStart: number;
}

/** Events of `subscriptionId` numbered `after+1`..`through`. */
export interface EventWindow {
  subscriptionId: string;
  after: number;
  through: number;
}

export async function readBoundStates(q: Queryable, ids: readonly string[]): Promise<Map<string, BoundState>> {
  const out = new Map<string, BoundState>();
  if (ids.length === 0) return out;
  const { rows } = await q.query<{ subscription_id: string; status: string; channel_type: string; subscription_version: number; events_since_start: number | string }>(
    `SELECT subscription_id, status, channel_type, subscription_version, events_since_start FROM subscription_state WHERE subscription_id = ANY($1::text[])`,
    [ids],
  );
  for (const r of rows) {
    out.set(r.subscription_id, { status: r.status, channelType: r.channel_type, subscriptionVersion: r.subscription_version, eventsSinceStart: Number(r.events_since_start) });
  }
  return out;
}

/** What the hub knows of a bound subscription: its bindings' lowest cursor and its definition's version. */
export interface KnownPosition {
  subscriptionId: string;
  floor: number;
  version: number;
}

/**
 * The states of those subscriptions that have events after `floor`, a newer version, or a status that
 * is not live — only rows the hub must act on: with 10,000 bound subscriptions and nothing new (the
 * safety-net poll every second), reading and parsing every state row was the bulk of the cost.
 */
export async function readChangedStates(q: Queryable, known: readonly KnownPosition[]): Promise<Map<string, BoundState>> {
  const out = new Map<string, BoundState>();
  if (known.length === 0) return out;
  const { rows } = await q.query<{ subscription_id: string; status: string; channel_type: string; subscription_version: number; events_since_start: number | string }>(
    `SELECT s.subscription_id, s.status, s.channel_type, s.subscription_version, s.events_since_start
       FROM unnest($1::text[], $2::bigint[], $3::int[]) AS k(id, floor, version)
       JOIN subscription_state s ON s.subscription_id = k.id
      WHERE s.events_since_start > k.floor OR s.subscription_version > k.version OR s.status NOT IN ('active', 'error')`,
    [known.map((k) => k.subscriptionId), known.map((k) => k.floor), known.map((k) => k.version)],
  );
  for (const r of rows) {
    out.set(r.subscription_id, { status: r.status, channelType: r.channel_type, subscriptionVersion: r.subscription_version, eventsSinceStart: Number(r.events_since_start) });
  }
  return out;
}

export async function readEventWindows(q: Queryable, windows: readonly EventWindow[]): Promise<Map<string, LoggedEventInput[]>> {
  const out = new Map<string, LoggedEventInput[]>();
  if (windows.length === 0) return out;
  const { rows } = await q.query<{
    subscription_id: string;
    event_number: number | string;
    occurred_at: Date | string;
    focus_type: string;
    focus_id: string;
    focus_version: number;
    interaction: LoggedEventInput['interaction'];
    additional_context: unknown;
  }>(
    `SELECT e.subscription_id, e.event_number, e.occurred_at, e.focus_type, e.focus_id, e.focus_version, e.interaction, e.additional_context
       FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS k(id, after, through)
       JOIN subscription_events e ON e.subscription_id = k.id AND e.event_number > k.after AND e.event_number <= k.through
      ORDER BY e.subscription_id, e.event_number`,
    [windows.map((w) => w.subscriptionId), windows.map((w) => w.after), windows.map((w) => w.through)],
  );
  for (const r of rows) {
    let list = out.get(r.subscription_id);
    if (!list) out.set(r.subscription_id, (list = []));
    list.push({
      eventNumber: Number(r.event_number),
      occurredAt: new Date(r.occurred_at),
      focus: { type: r.focus_type, id: r.focus_id, version: Number(r.focus_version) },
      interaction: r.interaction,
      additionalContext: toContext(r.additional_context),
    });
  }
  return out;
}

/** jsonb arrives parsed from pg and PGlite; text is tolerated too. */
function toContext(raw: unknown): LoggedEventInput['additionalContext'] {
  const list = typeof raw === 'string' ? (JSON.parse(raw) as unknown) : raw;
  if (!Array.isArray(list)) return [];
  return list
    .filter((c): c is { reference: string; version?: unknown } => typeof c === 'object' && c !== null && typeof (c as { reference?: unknown }).reference === 'string')
    .map((c) => ({ reference: c.reference, ...(c.version != null && Number.isSafeInteger(Number(c.version)) ? { version: Number(c.version) } : {}) }));
}
