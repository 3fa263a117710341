/**
 * Read side of the subscription pipeline for `$status` and `$events`, and the event-log retention.
 * A repository over `subscription_state` and `subscription_events` (written by the event writer and
 * the delivery worker), plus the stored Subscription resources and the resource history the
 * operations need. It reads only the columns agreed for those tables, so it does not depend on the
 * writer's internals.
 *
 * The retained log of a subscription is always a contiguous suffix of its event numbers: pruning
 * removes a prefix (see pruneEvents), so "oldest retained number" fully describes what is left.
 */
import type { Queryable } from '../store/db.js';

/** The state columns the operations report (one row per Subscription known to the pipeline). */
export interface SubscriptionStateView {
  subscriptionId: string;
  topicUrl: string;
  channelType: string;
  status: string;
  /** Last event number allocated (= events-since-subscription-start). */
  eventsSinceStart: number;
  deliveredThrough: number;
  heartbeatPeriod: number | null;
  lastSentAt: Date | null;
  errorCode: string | null;
  errorMessage: string | null;
  errorAt: Date | null;
}

/** A stored Subscription resource (current version, not deleted) with its pipeline state, if any. */
export interface SubscriptionWithState {
  id: string;
  /** The stored Subscription JSON (wire form, as written). */
  resource: Record<string, unknown>;
  /** Absent until the pipeline has seen the subscription. */
  state?: SubscriptionStateView;
}

export interface LoggedEvent {
  subscriptionId: string;
  eventNumber: number;
  occurredAt: Date;
  changeSeq: number;
  focus: { type: string; id: string; version: number };
  interaction: 'create' | 'update' | 'delete';
  /** References (`Type/id`) of additional-context resources, with the version when it was recorded. */
  additionalContext: { reference: string; version?: number }[];
}

export interface RetentionBounds {
  /** Oldest event number still retained; null when no event is retained. */
  oldestRetained: number | null;
  /** Newest event number retained; null when no event is retained. */
  newestRetained: number | null;
}

export interface RetentionPolicy {
  /** Newest events kept per subscription. */
  maxCount: number;
  /** Events older than this are removed. */
  maxAgeDays: number;
}

export interface PruneResult {
  deleted: number;
  /** True when another process held the pruning lock, so this call did nothing. */
  skipped: boolean;
}

/** A resource version to load: `version` undefined = the current version. */
export interface ResourceKey {
  type: string;
  id: string;
  version?: number;
}

/** Loaded content by key (see resourceKey); deleted versions and unknown resources are absent. */
export type LoadedResources = Map<string, Record<string, unknown>>;

export function resourceKey(k: ResourceKey): string {
  return k.version === undefined ? `${k.type}/${k.id}` : `${k.type}/${k.id}/_history/${k.version}`;
}

/** Serialises pruning across processes (pg_try_advisory_xact_lock key; constant, arbitrary). */
const PRUNE_LOCK_KEY = 724_311_017;
/** Rows deleted per statement: bounds lock time and WAL per statement on large first prunes. */
const DEFAULT_PRUNE_BATCH = 5_000;

const STATE_COLUMNS = `s.subscription_id, s.topic_url, s.channel_type, s.status, s.events_since_start, s.delivered_through,
  s.heartbeat_period, s.last_sent_at, s.error_code, s.error_message, s.error_at`;

interface RawState {
  subscription_id: string;
  topic_url: string;
  channel_type: string;
  status: string;
  events_since_start: number | string;
  delivered_through: number | string;
  heartbeat_period: number | null;
  last_sent_at: Date | string | null;
  error_code: string | null;
  error_message: string | null;
  error_at: Date | string | null;
}

interface RawEvent {
  subscription_id: string;
  event_number: number | string;
  occurred_at: Date | string;
  change_seq: number | string;
  focus_type: string;
  focus_id: string;
  focus_version: number;
  interaction: LoggedEvent['interaction'];
  additional_context: unknown;
}

const toDate = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

function toState(r: RawState): SubscriptionStateView {
  return {
    subscriptionId: r.subscription_id,
    topicUrl: r.topic_url,
    channelType: r.channel_type,
    status: r.status,
    eventsSinceStart: Number(r.events_since_start),
    deliveredThrough: Number(r.delivered_through),
    heartbeatPeriod: r.heartbeat_period,
    lastSentAt: toDate(r.last_sent_at),
    errorCode: r.error_code,
    errorMessage: r.error_message,
    errorAt: toDate(r.error_at),
  };
}

/** jsonb arrives parsed from pg and PGlite; text from a cast is tolerated too. */
function toContext(raw: unknown): LoggedEvent['additionalContext'] {
  const list = typeof raw === 'string' ? (JSON.parse(raw) as unknown) : raw;
  if (!Array.isArray(list)) return [];
  return list
    .filter((c): c is { reference: string; version?: unknown } => typeof c === 'object' && c !== null && typeof (c as { reference?: unknown }).reference === 'string')
    .map((c) => ({ reference: c.reference, ...(Number.isSafeInteger(Number(c.version)) && c.version != null ? { version: Number(c.version) } : {}) }));
}

function toEvent(r: RawEvent): LoggedEvent {
  return {
    subscriptionId: r.subscription_id,
    eventNumber: Number(r.event_number),
    occurredAt: new Date(r.occurred_at),
    changeSeq: Number(r.change_seq),
    focus: { type: r.focus_type, id: r.focus_id, version: Number(r.focus_version) },
    interaction: r.interaction,
    additionalContext: toContext(r.additional_context),
  };
}

export class EventLog {
  constructor(private readonly q: Queryable) {}

  /** Pipeline state of the given subscriptions (or all), optionally only those in one of `statuses`. */
  async getState(ids: readonly string[] | 'all', statuses?: readonly string[]): Promise<SubscriptionStateView[]> {
    if (ids !== 'all' && ids.length === 0) return [];
    const { rows } = await this.q.query<RawState>(
      `SELECT ${STATE_COLUMNS} FROM subscription_state s
        WHERE ($1::text[] IS NULL OR s.subscription_id = ANY($1::text[]))
          AND ($2::text[] IS NULL OR s.status = ANY($2::text[]))
        ORDER BY s.subscription_id`,
      [ids === 'all' ? null : [...ids], statuses && statuses.length > 0 ? [...statuses] : null],
    );
    return rows.map(toState);
  }

  /**
   * Stored (not deleted) Subscription resources with their state, for `$status`. The status filter
   * applies to the effective status: the pipeline's when it has a row, else the resource's own.
   */
  async findSubscriptions(ids: readonly string[] | 'all', statuses?: readonly string[]): Promise<SubscriptionWithState[]> {
    if (ids !== 'all' && ids.length === 0) return [];
    const { rows } = await this.q.query<RawState & { id: string; content: string; has_state: boolean }>(
      `SELECT r.id, r.content, s.subscription_id IS NOT NULL AS has_state, ${STATE_COLUMNS}
         FROM resources r LEFT JOIN subscription_state s ON s.subscription_id = r.id
        WHERE r.resource_type = 'Subscription' AND NOT r.deleted AND r.content IS NOT NULL
          AND ($1::text[] IS NULL OR r.id = ANY($1::text[]))
          AND ($2::text[] IS NULL OR COALESCE(s.status, r.content::jsonb ->> 'status') = ANY($2::text[]))
        ORDER BY r.id`,
      [ids === 'all' ? null : [...ids], statuses && statuses.length > 0 ? [...statuses] : null],
    );
    return rows.map((r) => ({
      id: r.id,
      resource: JSON.parse(r.content) as Record<string, unknown>,
      ...(r.has_state ? { state: toState(r) } : {}),
    }));
  }

  /** Events numbered `fromNumber`..`toNumber` (inclusive), oldest first, at most `limit`. */
  async listEvents(subscriptionId: string, fromNumber: number, toNumber: number, limit: number): Promise<LoggedEvent[]> {
    if (limit <= 0 || fromNumber > toNumber) return [];
    const { rows } = await this.q.query<RawEvent>(
      `SELECT subscription_id, event_number, occurred_at, change_seq, focus_type, focus_id, focus_version, interaction, additional_context
         FROM subscription_events
        WHERE subscription_id = $1 AND event_number BETWEEN $2 AND $3
        ORDER BY event_number LIMIT $4`,
      [subscriptionId, fromNumber, toNumber, limit],
    );
    return rows.map(toEvent);
  }

  /** The retained window of a subscription's log (two primary-key lookups). */
  async retentionBounds(subscriptionId: string): Promise<RetentionBounds> {
    const { rows } = await this.q.query<{ oldest: number | string | null; newest: number | string | null }>(
      `SELECT (SELECT min(event_number) FROM subscription_events WHERE subscription_id = $1) AS oldest,
              (SELECT max(event_number) FROM subscription_events WHERE subscription_id = $1) AS newest`,
      [subscriptionId],
    );
    const r = rows[0];
    return {
      oldestRetained: r?.oldest == null ? null : Number(r.oldest),
      newestRetained: r?.newest == null ? null : Number(r.newest),
    };
  }

  /**
   * Content of resource versions (history) and current versions in one query each. Versions that
   * are deletions, and unknown resources, are left out: the caller reports them without content.
   */
  async loadResources(keys: readonly ResourceKey[]): Promise<LoadedResources> {
    const out: LoadedResources = new Map();
    const versioned = dedupe(keys.filter((k) => k.version !== undefined));
    const current = dedupe(keys.filter((k) => k.version === undefined));
    if (versioned.length > 0) {
      const { rows } = await this.q.query<{ resource_type: string; id: string; version_id: number; content: string }>(
        `SELECT h.resource_type, h.id, h.version_id, h.content FROM resource_history h
           JOIN unnest($1::text[], $2::text[], $3::int[]) AS k(t, i, v) ON h.resource_type = k.t AND h.id = k.i AND h.version_id = k.v
          WHERE NOT h.deleted AND h.content IS NOT NULL`,
        [versioned.map((k) => k.type), versioned.map((k) => k.id), versioned.map((k) => k.version)],
      );
      for (const r of rows) out.set(resourceKey({ type: r.resource_type, id: r.id, version: Number(r.version_id) }), JSON.parse(r.content) as Record<string, unknown>);
    }
    if (current.length > 0) {
      const { rows } = await this.q.query<{ resource_type: string; id: string; content: string }>(
        `SELECT r.resource_type, r.id, r.content FROM resources r
           JOIN unnest($1::text[], $2::text[]) AS k(t, i) ON r.resource_type = k.t AND r.id = k.i
          WHERE NOT r.deleted AND r.content IS NOT NULL`,
        [current.map((k) => k.type), current.map((k) => k.id)],
      );
      for (const r of rows) out.set(resourceKey({ type: r.resource_type, id: r.id }), JSON.parse(r.content) as Record<string, unknown>);
    }
    return out;
  }

  /**
   * Applies the retention policy: per subscription, keeps the newest `maxCount` events and none
   * older than `maxAgeDays` (events are removed if either rule says so). Both rules remove a prefix
   * of the log — the age rule cuts through the newest expired event, so an event stamped out of order
   * goes with its older neighbours — which keeps the retained window contiguous.
   *
   * Work is proportional to what is deleted: the count rule walks subscription_state (one row per
   * subscription) and the primary key; the age rule starts from the occurred_at index. Safe from
   * several processes: each statement first takes a transaction-scoped advisory lock with
   * try-semantics, so only one process deletes at a time (no lock waits, no deadlocks between
   * overlapping deletes) and the others report `skipped`. Deletes run in batches of `batchSize`.
   *
   * Events of a subscription without a state row (a deleted Subscription) fall to the age rule only.
   */
  async pruneEvents(now: Date, policy: RetentionPolicy, options: { batchSize?: number } = {}): Promise<PruneResult> {
    const batch = options.batchSize ?? DEFAULT_PRUNE_BATCH;
    const cutoff = new Date(now.getTime() - policy.maxAgeDays * 86_400_000).toISOString();
    let deleted = 0;
    for (const doomed of [doomedByCount, doomedByAge]) {
      for (;;) {
        const { rows } = await this.q.query<{ got: boolean; deleted: number | string }>(
          `WITH lock AS MATERIALIZED (SELECT pg_try_advisory_xact_lock(${PRUNE_LOCK_KEY}) AS got),
                doomed AS (${doomed}),
                gone AS (DELETE FROM subscription_events e USING doomed
                          WHERE e.subscription_id = doomed.subscription_id AND e.event_number = doomed.event_number RETURNING 1)
           SELECT (SELECT got FROM lock) AS got, (SELECT count(*) FROM gone) AS deleted`,
          doomed === doomedByCount ? [policy.maxCount, batch] : [cutoff, batch],
        );
        const row = rows[0];
        if (!row?.got) return { deleted, skipped: true };
        const n = Number(row.deleted);
        deleted += n;
        if (n < batch) break;
      }
    }
    return { deleted, skipped: false };
  }
}

// The `(SELECT got FROM lock)` guard is an InitPlan: evaluated once, before any row is read or locked.
const doomedByCount = `
  SELECT e.subscription_id, e.event_number
    FROM subscription_state s
    JOIN subscription_events e ON e.subscription_id = s.subscription_id AND e.event_number <= s.events_since_start - $1::bigint
   WHERE (SELECT got FROM lock) AND s.events_since_start > $1::bigint
   LIMIT $2`;

const doomedByAge = `
  SELECT e.subscription_id, e.event_number
    FROM (SELECT subscription_id, max(event_number) AS through FROM subscription_events
           WHERE (SELECT got FROM lock) AND occurred_at < $1::timestamptz GROUP BY subscription_id) cut
    JOIN subscription_events e ON e.subscription_id = cut.subscription_id AND e.event_number <= cut.through
   LIMIT $2`;

function dedupe(keys: ResourceKey[]): ResourceKey[] {
  const seen = new Map<string, ResourceKey>();
  for (const k of keys) seen.set(resourceKey(k), k);
  return [...seen.values()];
}
