/**
 * The server-owned state of each subscription (table subscription_state): effective status, event
 * counter, delivery progress, retry schedule and worker lease. The Subscription resource is what the
 * client wrote; this row is what the pipeline works from.
 */
import type { Queryable } from '../store/db.js';
import type { SubscriptionChannel, SubscriptionSpec, SubscriptionStatus } from './subscription-model.js';

/**
 * The channel code the pipeline works from (subscription_state.channel_type, and the channel type the
 * matcher hands over with each event): a base channel's own code, or `custom:<base>` for a custom
 * channel (backport-channel-type). A custom channel is always delivered by its Channel implementation
 * through the delivery worker; its base code only gives its lifecycle (handshake or not). Without the
 * prefix, a custom channel on the `websocket` base would count as a connection channel, which the
 * worker skips and the websocket hub never binds: it would be `active` and never notified.
 */
export function pipelineChannelType(channel: Pick<SubscriptionChannel, 'type' | 'custom'>): string {
  return channel.custom ? `custom:${channel.type}` : channel.type;
}

/** Pipeline channel codes whose endpoint must accept a handshake before the subscription turns active. */
export const HANDSHAKE_CHANNELS = ['rest-hook', 'message', 'custom:rest-hook', 'custom:message'];

/**
 * Channels whose notifications go to connections the client opened (websocket, not a custom channel on
 * that base): the hub holding the connection sends events and heartbeats while it is bound, so the push
 * worker leaves them alone.
 */
export const CONNECTION_CHANNELS = ['websocket'];

export interface StateInput {
  subscriptionId: string;
  topicUrl: string;
  channelType: string;
  status: SubscriptionStatus;
  heartbeatPeriod?: number;
  endAt?: string;
  subscriptionVersion: number;
}

export interface StateRow {
  subscriptionId: string;
  topicUrl: string;
  channelType: string;
  status: SubscriptionStatus;
  eventsSinceStart: number;
  deliveredThrough: number;
  heartbeatPeriod: number | null;
  endAt: Date | null;
  subscriptionVersion: number;
  nextAttemptAt: Date | null;
  attempts: number;
  lastSentAt: Date | null;
  errorCode: string | null;
  errorMessage: string | null;
}

interface RawState {
  subscription_id: string;
  topic_url: string;
  channel_type: string;
  status: SubscriptionStatus;
  events_since_start: number | string;
  delivered_through: number | string;
  heartbeat_period: number | null;
  end_at: Date | string | null;
  subscription_version: number;
  next_attempt_at: Date | string | null;
  attempts: number;
  last_sent_at: Date | string | null;
  error_code: string | null;
  error_message: string | null;
}

const date = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

export function toStateRow(r: RawState): StateRow {
  return {
    subscriptionId: r.subscription_id,
    topicUrl: r.topic_url,
    channelType: r.channel_type,
    status: r.status,
    eventsSinceStart: Number(r.events_since_start),
    deliveredThrough: Number(r.delivered_through),
    heartbeatPeriod: r.heartbeat_period,
    endAt: date(r.end_at),
    subscriptionVersion: r.subscription_version,
    nextAttemptAt: date(r.next_attempt_at),
    attempts: r.attempts,
    lastSentAt: date(r.last_sent_at),
    errorCode: r.error_code,
    errorMessage: r.error_message,
  };
}

export const STATE_COLUMNS = `subscription_id, topic_url, channel_type, status, events_since_start, delivered_through, heartbeat_period,
  end_at, subscription_version, next_attempt_at, attempts, last_sent_at, error_code, error_message`;

export function stateFromSpec(spec: SubscriptionSpec, version: number): StateInput {
  return {
    subscriptionId: spec.id,
    topicUrl: spec.topic,
    channelType: pipelineChannelType(spec.channel),
    status: spec.status,
    ...(spec.channel.heartbeatPeriod !== undefined ? { heartbeatPeriod: spec.channel.heartbeatPeriod } : {}),
    ...(spec.end ? { endAt: spec.end } : {}),
    subscriptionVersion: version,
  };
}

/**
 * Records a Subscription version the client (or the server) wrote. Older versions never overwrite newer
 * state. A (re)quested subscription is scheduled for its handshake at `handshakeAt` with a fresh retry
 * count; the event counter and delivery progress are kept (numbers continue after re-activation).
 */
export async function upsertSubscriptionState(q: Queryable, s: StateInput, handshakeAt: Date): Promise<void> {
  await q.query(
    `INSERT INTO subscription_state (subscription_id, topic_url, channel_type, status, heartbeat_period, end_at, subscription_version, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $4 = 'requested' THEN $8::timestamptz END)
     ON CONFLICT (subscription_id) DO UPDATE SET
       topic_url = EXCLUDED.topic_url,
       channel_type = EXCLUDED.channel_type,
       heartbeat_period = EXCLUDED.heartbeat_period,
       end_at = EXCLUDED.end_at,
       subscription_version = EXCLUDED.subscription_version,
       status = EXCLUDED.status,
       next_attempt_at = CASE WHEN EXCLUDED.status = 'requested' AND subscription_state.status <> 'requested' THEN $8::timestamptz
                              WHEN EXCLUDED.status = 'requested' THEN subscription_state.next_attempt_at ELSE NULL END,
       attempts = CASE WHEN EXCLUDED.status <> subscription_state.status THEN 0 ELSE subscription_state.attempts END,
       updated_at = now()
     WHERE subscription_state.subscription_version < EXCLUDED.subscription_version`,
    [s.subscriptionId, s.topicUrl, s.channelType, s.status, s.heartbeatPeriod ?? null, s.endAt ?? null, s.subscriptionVersion, handshakeAt.toISOString()],
  );
}

export async function getState(q: Queryable, subscriptionId: string): Promise<StateRow | undefined> {
  const { rows } = await q.query<RawState>(`SELECT ${STATE_COLUMNS} FROM subscription_state WHERE subscription_id = $1`, [subscriptionId]);
  return rows[0] ? toStateRow(rows[0]) : undefined;
}
