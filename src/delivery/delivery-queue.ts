/**
 * The delivery queue is the subscription_state table itself: a subscription has work when its
 * handshake is pending, when events are numbered beyond what was delivered, or when its channel has been
 * silent for its heartbeat period — except for connection channels (websocket), whose events and heartbeats
 * the websocket hub sends to bound connections; only `end` is handled here for them. A custom channel on
 * the websocket base is stored as `custom:websocket` (pipelineChannelType), so it is pushed from here
 * like any other channel. Workers claim subscriptions with a lease (`FOR UPDATE SKIP LOCKED`),
 * so at most one worker — in any process — delivers for a subscription at a time, which keeps
 * notifications in event order. A crashed worker's lease simply expires.
 */
import type { Queryable } from '../store/db.js';
import type { NumberedEvent } from '../subscriptions/event-model.js';
import { CONNECTION_CHANNELS, HANDSHAKE_CHANNELS, STATE_COLUMNS, toStateRow, type StateRow } from '../subscriptions/subscription-state.js';

/**
 * Subscriptions with due work, one branch per kind of work, each served by its partial index (migration
 * 5), so finding work costs what is due, not what exists. The literal 'websocket' matches those
 * indexes' predicates (a parameter would keep the planner from using them): it is CONNECTION_CHANNELS.
 */
const CANDIDATES = `
  SELECT subscription_id FROM subscription_state
   WHERE status = 'requested' AND channel_type = ANY($2::text[]) AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
  UNION ALL
  SELECT subscription_id FROM subscription_state
   WHERE status = 'active' AND delivered_through < events_since_start AND channel_type <> 'websocket'
     AND (next_attempt_at IS NULL OR next_attempt_at <= $1)
  UNION ALL
  SELECT subscription_id FROM subscription_state
   WHERE heartbeat_period IS NOT NULL AND status IN ('active', 'error') AND channel_type <> 'websocket'
     AND heartbeat_due_at <= $1
  UNION ALL
  SELECT subscription_id FROM subscription_state WHERE end_at IS NOT NULL AND status <> 'off' AND end_at <= $1`;

if (CONNECTION_CHANNELS.length !== 1 || CONNECTION_CHANNELS[0] !== 'websocket') throw new Error('delivery-queue.ts: update the connection channel literal');

/** Claims up to `limit` subscriptions with due work; each lease lasts until `leaseUntil`. */
export async function claimDue(q: Queryable, owner: string, now: Date, leaseUntil: Date, limit: number): Promise<StateRow[]> {
  const { rows } = await q.query<Parameters<typeof toStateRow>[0]>(
    `UPDATE subscription_state SET lease_owner = $3, lease_until = $4
      WHERE subscription_id IN (
        SELECT subscription_id FROM subscription_state
         WHERE subscription_id IN (${CANDIDATES}) AND (lease_until IS NULL OR lease_until < $1)
         ORDER BY next_attempt_at NULLS FIRST, subscription_id LIMIT $5 FOR UPDATE SKIP LOCKED)
      RETURNING ${STATE_COLUMNS}`,
    [now.toISOString(), HANDSHAKE_CHANNELS, owner, leaseUntil.toISOString(), limit],
  );
  return rows.map(toStateRow);
}

/** When the next timed work (retry, handshake delay, heartbeat, end, lease expiry) falls due, if any. */
export async function nextDueAt(q: Queryable): Promise<Date | undefined> {
  const { rows } = await q.query<{ at: Date | string | null }>(
    `SELECT least(
       (SELECT min(next_attempt_at) FROM subscription_state WHERE status = 'requested'),
       (SELECT min(next_attempt_at) FROM subscription_state
         WHERE status = 'active' AND delivered_through < events_since_start AND channel_type <> 'websocket'),
       (SELECT min(heartbeat_due_at) FROM subscription_state
         WHERE heartbeat_period IS NOT NULL AND status IN ('active', 'error') AND channel_type <> 'websocket'),
       (SELECT min(end_at) FROM subscription_state WHERE end_at IS NOT NULL AND status <> 'off'),
       (SELECT min(lease_until) FROM subscription_state WHERE lease_until IS NOT NULL)) AS at`,
  );
  return rows[0]?.at ? new Date(rows[0].at) : undefined;
}

/**
 * Records delivered progress and extends the lease — or, with `releaseIfCaughtUp`, releases it in the
 * same statement when everything numbered so far is delivered (saving a round trip per notification).
 * Returns the current event count (did more arrive meanwhile?) and whether the lease was released;
 * undefined if this worker no longer holds the lease (it expired and another took over: stop at once).
 *
 * The statement commits without waiting for its WAL flush (`synchronous_commit` off for its own
 * transaction, via `set_config(…, true)` in the WHERE clause). Progress only ever saves a resend: a
 * database crash that loses its last few milliseconds resends those notifications, which at-least-once
 * delivery already allows (as after a worker crash before recording). Every later synchronous commit
 * flushes it anyway, and the WAL is a prefix, so progress is never durable ahead of the events it
 * covers. It cut PostgreSQL's WAL flushes by 9–14% under write load (bench/notify.ts, WAL
 * flushes/write). Call it outside transactions: inside one, the whole transaction would commit
 * without waiting.
 */
export async function recordDelivered(
  q: Queryable,
  owner: string,
  subscriptionId: string,
  update: { deliveredThrough?: number; sentAt: Date; leaseUntil: Date; releaseIfCaughtUp?: boolean },
): Promise<{ eventsSinceStart: number; released: boolean } | undefined> {
  const res = await q.query<{ n: number | string; released: boolean }>(
    `UPDATE subscription_state SET delivered_through = greatest(delivered_through, coalesce($3, delivered_through)),
        last_sent_at = $4, attempts = 0, next_attempt_at = NULL,
        error_code = NULL, error_message = NULL, error_at = NULL,
        lease_owner = CASE WHEN $6 AND events_since_start <= coalesce($3, delivered_through) THEN NULL ELSE lease_owner END,
        lease_until = CASE WHEN $6 AND events_since_start <= coalesce($3, delivered_through) THEN NULL ELSE $5::timestamptz END
      WHERE subscription_id = $1 AND lease_owner = $2 AND set_config('synchronous_commit', 'off', true) IS NOT NULL
      RETURNING events_since_start AS n, lease_owner IS NULL AS released`,
    [subscriptionId, owner, update.deliveredThrough ?? null, update.sentAt.toISOString(), update.leaseUntil.toISOString(), update.releaseIfCaughtUp ?? false],
    // A key lookup in subscription_state, whose statistics are refreshed as it grows (statistics-refresh.ts).
    { reusePlan: true },
  );
  return res.rows[0] ? { eventsSinceStart: Number(res.rows[0].n), released: res.rows[0].released } : undefined;
}

/** Records a failed attempt: the error, the attempt count and when to try again. */
export async function recordFailure(
  q: Queryable,
  owner: string,
  subscriptionId: string,
  failure: { code: string; message: string; at: Date; attempts: number; retryAt: Date | null; countsAsSent?: boolean },
): Promise<void> {
  await q.query(
    `UPDATE subscription_state SET attempts = $3, next_attempt_at = $4, error_code = $5, error_message = $6, error_at = $7,
        last_sent_at = CASE WHEN $8 THEN $7 ELSE last_sent_at END
      WHERE subscription_id = $1 AND lease_owner = $2`,
    [subscriptionId, owner, failure.attempts, failure.retryAt?.toISOString() ?? null, failure.code, failure.message, failure.at.toISOString(), failure.countsAsSent ?? false],
  );
}

/** Extends this worker's lease; false if it no longer holds it. */
export async function extendLease(q: Queryable, owner: string, subscriptionId: string, leaseUntil: Date): Promise<boolean> {
  const res = await q.query('UPDATE subscription_state SET lease_until = $3 WHERE subscription_id = $1 AND lease_owner = $2', [subscriptionId, owner, leaseUntil.toISOString()]);
  return res.rowCount === 1;
}

export async function releaseLease(q: Queryable, owner: string, subscriptionId: string): Promise<void> {
  await q.query('UPDATE subscription_state SET lease_owner = NULL, lease_until = NULL WHERE subscription_id = $1 AND lease_owner = $2', [subscriptionId, owner]);
}

/** An event as the log stores it (the event writer hands the same shape over in memory). */
export type StoredEvent = NumberedEvent;

/** Events `from`..`from+limit-1` of a subscription, in order. */
export async function eventsFrom(q: Queryable, subscriptionId: string, from: number, through: number, limit: number): Promise<StoredEvent[]> {
  const { rows } = await q.query<{
    event_number: number | string;
    occurred_at: Date | string;
    focus_type: string;
    focus_id: string;
    focus_version: number;
    interaction: StoredEvent['interaction'];
    additional_context: { reference: string }[] | string;
  }>(
    `SELECT event_number, occurred_at, focus_type, focus_id, focus_version, interaction, additional_context
       FROM subscription_events WHERE subscription_id = $1 AND event_number >= $2 AND event_number <= $3
      ORDER BY event_number LIMIT $4`,
    [subscriptionId, from, through, limit],
  );
  return rows.map((r) => ({
    eventNumber: Number(r.event_number),
    occurredAt: new Date(r.occurred_at),
    focusType: r.focus_type,
    focusId: r.focus_id,
    focusVersion: r.focus_version,
    interaction: r.interaction,
    additionalContext: typeof r.additional_context === 'string' ? (JSON.parse(r.additional_context) as { reference: string }[]) : r.additional_context,
  }));
}
