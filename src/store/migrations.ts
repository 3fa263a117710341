import type { Db } from './db.js';

/**
 * Versioned migrations, applied in order at start inside one transaction each, recorded in
 * `schema_migrations`. Safe to run twice and from several processes at once (an advisory lock
 * serialises them). Never edit a released migration: append a new one.
 */
export const MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'resources and history (the change log)',
    sql: `
CREATE TABLE resources (
  resource_type text NOT NULL,
  id text NOT NULL,
  version_id integer NOT NULL,
  last_updated timestamptz NOT NULL,
  deleted boolean NOT NULL DEFAULT false,
  -- The current version as FHIR JSON text (kept as written, key order preserved); NULL once deleted.
  content text,
  -- Normalised search values, one key per search parameter code (see src/fhir/search/extract.ts).
  idx jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Exact-match keys (token, reference, uri, _id) for GIN lookups (see src/fhir/search/extract.ts).
  tokens text[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (resource_type, id)
);
-- fastupdate off: the pending list would make every token lookup scan recent inserts linearly.
CREATE INDEX resources_tokens_gin ON resources USING gin (tokens) WITH (fastupdate = off);
CREATE INDEX resources_type_updated ON resources (resource_type, last_updated);

-- Every version of every resource. Each row is also the change record of the write that made it:
-- it is inserted in the same transaction as the write, so a committed write always has its change
-- and a rolled-back write never does. seq orders the change feed (src/capture/change-feed.ts).
CREATE TABLE resource_history (
  seq bigserial PRIMARY KEY,
  resource_type text NOT NULL,
  id text NOT NULL,
  version_id integer NOT NULL,
  previous_version_id integer,
  interaction text NOT NULL CHECK (interaction IN ('create', 'update', 'delete')),
  -- The HTTP method of the request that made the version (POST, PUT, PATCH, DELETE), for history bundles.
  method text NOT NULL,
  last_updated timestamptz NOT NULL,
  deleted boolean NOT NULL DEFAULT false,
  content text,
  UNIQUE (resource_type, id, version_id)
);
CREATE INDEX resource_history_updated ON resource_history (last_updated);
CREATE INDEX resource_history_type_updated ON resource_history (resource_type, last_updated);

-- Persisted positions of change-feed consumers (exactly-once, resumable).
CREATE TABLE feed_positions (
  consumer text PRIMARY KEY,
  position bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    version: 2,
    name: 'subscription state, event log',
    sql: `
-- The subscription pipeline's state, one row per Subscription (the resource itself stays in resources).
-- Server-owned: events are numbered here, delivery is leased and retried here.
CREATE TABLE subscription_state (
  subscription_id text PRIMARY KEY,
  topic_url text NOT NULL,
  channel_type text NOT NULL,
  -- Effective status (requested | active | error | off), mirrored into Subscription.status.
  status text NOT NULL,
  -- Last event number allocated (= events-since-subscription-start): gap-free, never reused.
  events_since_start bigint NOT NULL DEFAULT 0,
  -- Highest event number delivered (or given up on after the retry limit).
  delivered_through bigint NOT NULL DEFAULT 0,
  heartbeat_period integer,
  -- Subscription.end: the subscription turns off at this instant.
  end_at timestamptz,
  -- Version of the Subscription resource this row reflects (later versions win; the pipeline and the
  -- delivery worker both write it).
  subscription_version integer NOT NULL DEFAULT 0,
  -- Delivery scheduling: earliest next attempt (backoff), consecutive failures, lease of the worker.
  next_attempt_at timestamptz,
  attempts integer NOT NULL DEFAULT 0,
  lease_owner text,
  lease_until timestamptz,
  -- Last notification of any kind sent (heartbeats fill channel silence).
  last_sent_at timestamptz,
  error_code text,
  error_message text,
  error_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscription_state_due ON subscription_state (next_attempt_at);

-- Every event of every subscription, durably numbered in the same transaction as the change-feed
-- position that produced it (exactly once). Kept for $events within the retention limits.
CREATE TABLE subscription_events (
  subscription_id text NOT NULL,
  event_number bigint NOT NULL,
  occurred_at timestamptz NOT NULL,
  change_seq bigint NOT NULL,
  focus_type text NOT NULL,
  focus_id text NOT NULL,
  focus_version integer NOT NULL,
  interaction text NOT NULL CHECK (interaction IN ('create', 'update', 'delete')),
  -- [{"reference": "Patient/1", "version": 3}, …] from the topic's notificationShape includes.
  additional_context jsonb NOT NULL DEFAULT '[]'::jsonb,
  PRIMARY KEY (subscription_id, event_number)
);
CREATE INDEX subscription_events_time ON subscription_events (occurred_at);
CREATE INDEX resource_history_type_seq ON resource_history (resource_type, seq);
`,
  },
  {
    version: 3,
    name: 'websocket binding tokens',
    sql: `
-- Tokens issued by $get-ws-binding-token. Stored here (not in process memory) so that a token issued by
-- one server process binds on another. Only a SHA-256 of the token is kept: a database reader cannot bind.
CREATE TABLE ws_binding_tokens (
  token_hash text PRIMARY KEY,
  -- Who asked for the token (the request's principal; 'anonymous' until authentication exists).
  requester text NOT NULL,
  -- The Subscription ids the token may bind, and nothing else.
  subscription_ids text[] NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ws_binding_tokens_expiry ON ws_binding_tokens (expires_at);
`,
  },
  {
    version: 4,
    name: 'commit horizon in one call',
    sql: `
-- The two reads of the change feed's commit horizon (src/capture/commit-horizon.ts) in one round trip.
-- Their order matters: the sequence first, then the transactions writing change rows. PL/pgSQL runs
-- its statements in order, which one SQL statement with two subqueries would not guarantee.
CREATE FUNCTION clarion_commit_horizon(OUT last_value bigint, OUT is_called boolean, OUT writers text[])
LANGUAGE plpgsql AS $fn$
BEGIN
  SELECT s.last_value, s.is_called INTO last_value, is_called FROM resource_history_seq_seq s;
  SELECT array_agg(DISTINCT x.transactionid::text) INTO writers
    FROM pg_locks t
    JOIN pg_locks x ON x.virtualtransaction = t.virtualtransaction AND x.locktype = 'transactionid'
   WHERE t.locktype = 'relation' AND t.relation = 'resource_history'::regclass
     AND t.mode = 'RowExclusiveLock' AND t.granted;
END
$fn$;
`,
  },
  {
    version: 5,
    name: 'due work found through partial indexes',
    sql: `
-- The delivery worker looks for due work on every wake-up. Each kind of due work has its own partial
-- index holding only the rows that can have that work, so the cost does not grow with the number of
-- idle subscriptions (100,000 active subscriptions without undelivered events are in none of these).
-- 'websocket' is the connection channel (src/subscriptions/subscription-state.ts CONNECTION_CHANNELS):
-- its events go to bound sockets, not through the worker.
CREATE INDEX subscription_state_requested ON subscription_state (next_attempt_at) WHERE status = 'requested';
CREATE INDEX subscription_state_undelivered ON subscription_state (next_attempt_at)
  WHERE status = 'active' AND delivered_through < events_since_start AND channel_type <> 'websocket';
CREATE INDEX subscription_state_heartbeat ON subscription_state (last_sent_at)
  WHERE heartbeat_period IS NOT NULL AND status IN ('active', 'error') AND channel_type <> 'websocket';
CREATE INDEX subscription_state_ending ON subscription_state (end_at) WHERE end_at IS NOT NULL AND status <> 'off';
CREATE INDEX subscription_state_leased ON subscription_state (lease_until) WHERE lease_until IS NOT NULL;
DROP INDEX subscription_state_due;
`,
  },
  {
    version: 6,
    name: 'custom channels keep their own pipeline channel code',
    sql: `
-- A custom channel (backport-channel-type) used to be recorded under its base code. On the websocket
-- base that made it a connection channel: the delivery worker skipped it and the websocket hub never
-- binds it, so it was active and never notified. Custom channels are now recorded as 'custom:<base>'
-- (src/subscriptions/subscription-state.ts pipelineChannelType); existing rows are moved, and a
-- custom websocket one then receives the events it counted meanwhile.
UPDATE subscription_state s SET channel_type = 'custom:' || s.channel_type
  FROM resources r
 WHERE r.resource_type = 'Subscription' AND r.id = s.subscription_id AND r.content IS NOT NULL
   AND s.channel_type NOT LIKE 'custom:%'
   AND (r.content::jsonb -> 'channel' -> '_type' -> 'extension')
       @> '[{"url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-channel-type"}]'::jsonb;
`,
  },
  {
    version: 7,
    name: 'change feed reads the horizon and the changes in one call',
    sql: `
-- The commit horizon's two reads (clarion_commit_horizon, migration 4), then the changes after a
-- position up to the sequence value read, in one round trip. The changes are read by a later statement than the writer check, so
-- with its own, later snapshot: every change the caller can prove final from this call's horizon
-- values is visible to that read (src/capture/change-feed.ts drops the rows above the horizon).
-- The first row carries the horizon values (seq NULL); the changes follow in order.
CREATE FUNCTION clarion_changes_with_horizon(p_after bigint, p_limit integer, p_types text[])
RETURNS TABLE (seq bigint, resource_type text, id text, version_id integer, previous_version_id integer,
               interaction text, method text, last_updated timestamptz, content text, previous_content text,
               last_value bigint, is_called boolean, writers text[])
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_last bigint;
  v_called boolean;
  v_writers text[];
BEGIN
  SELECT h.last_value, h.is_called, h.writers INTO v_last, v_called, v_writers FROM clarion_commit_horizon() h;
  RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text, NULL::integer, NULL::integer, NULL::text, NULL::text,
    NULL::timestamptz, NULL::text, NULL::text, v_last, v_called, v_writers;
  IF v_called AND v_last > p_after THEN
    RETURN QUERY
      SELECT h.seq, h.resource_type, h.id, h.version_id, h.previous_version_id, h.interaction, h.method, h.last_updated,
             CASE WHEN h.resource_type = ANY(p_types) THEN h.content END,
             CASE WHEN h.resource_type = ANY(p_types) AND h.previous_version_id IS NOT NULL THEN
               (SELECT p.content FROM resource_history p
                 WHERE p.resource_type = h.resource_type AND p.id = h.id AND p.version_id = h.previous_version_id) END,
             NULL::bigint, NULL::boolean, NULL::text[]
        FROM resource_history h WHERE h.seq > p_after AND h.seq <= v_last ORDER BY h.seq LIMIT p_limit;
  END IF;
END
$fn$;
`,
  },
  {
    version: 8,
    name: 'due heartbeats found through an index of their due time',
    sql: `
-- A heartbeat is due a period after the last notification sent (or, before any, after the row was
-- written). With the period varying per row, the due time was computed for every subscription that has a
-- period on each look for work: 15-30 ms per claim with 100,000 of them. It is now a column, kept by a
-- trigger that fires only when the sent time or the period is written (not on the event counter
-- updates, which can touch 10,000 rows at once), and indexed like the other kinds of due work.
ALTER TABLE subscription_state ADD COLUMN heartbeat_due_at timestamptz;
CREATE FUNCTION clarion_heartbeat_due() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.heartbeat_due_at := CASE WHEN NEW.heartbeat_period IS NULL THEN NULL
    ELSE coalesce(NEW.last_sent_at, NEW.updated_at) + NEW.heartbeat_period * interval '1 second' END;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER subscription_state_heartbeat_due BEFORE INSERT OR UPDATE OF last_sent_at, heartbeat_period
  ON subscription_state FOR EACH ROW EXECUTE FUNCTION clarion_heartbeat_due();
UPDATE subscription_state SET heartbeat_due_at = coalesce(last_sent_at, updated_at) + heartbeat_period * interval '1 second'
 WHERE heartbeat_period IS NOT NULL;
DROP INDEX subscription_state_heartbeat;
CREATE INDEX subscription_state_heartbeat ON subscription_state (heartbeat_due_at)
  WHERE heartbeat_period IS NOT NULL AND status IN ('active', 'error') AND channel_type <> 'websocket';
`,
  },
  {
    version: 9,
    name: 'token index takes new keys through a small pending list',
    sql: `
-- Migration 1 turned the GIN pending list off: at its default size (4 MB) every token lookup would scan
-- thousands of recent inserts. Without it, though, each create inserts each of its keys (7 for a small
-- Encounter) into the key's posting tree at once. A pending list of 128 kB (about 300 creates' keys)
-- bounds the lookup's extra scan and lets the inserting statement that fills it merge the keys in one
-- sorted pass: an insert batch's execution went from 1.34 to 1.06 ms mean under write load, token
-- searches and write → notification p99 unchanged (bench/README.md, session 9). Searches find pending
-- keys as they find indexed ones.
ALTER INDEX resources_tokens_gin SET (fastupdate = on, gin_pending_list_limit = 128);
`,
  },
  {
    version: 10,
    name: 'plain creates number their subscription events in their own statement',
    sql: `
-- A batch of creates may number its subscription events itself, in the statement that stores it
-- (src/subscriptions/insert-time-events.ts), instead of leaving them to the event writer: the event is
-- then durable with the 201 and delivery starts at once. Its matcher must reflect every Subscription
-- and topic (Basic) change committed before the batch's own sequence numbers, and none may be in flight.
-- The fence row proves it: every write of a Subscription or Basic row locks it before its change record
-- draws a sequence number (BEFORE trigger on resources), and records that number (AFTER trigger on
-- resource_history), so a batch that locks the row (SKIP LOCKED: never waiting) and finds last_seq at or
-- below its matcher's position knows its matcher is current and that any later such change gets a
-- higher number. Locked by a writer, the batch leaves its events to the event writer as before.
CREATE TABLE matcher_fence (
  only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  last_seq bigint NOT NULL DEFAULT 0
);
INSERT INTO matcher_fence (last_seq) SELECT coalesce(max(seq), 0) FROM resource_history WHERE resource_type IN ('Subscription', 'Basic');
CREATE FUNCTION clarion_matcher_fence_lock() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM 1 FROM matcher_fence FOR UPDATE;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER resources_matcher_fence BEFORE INSERT OR UPDATE ON resources FOR EACH ROW
  WHEN (NEW.resource_type IN ('Subscription', 'Basic')) EXECUTE FUNCTION clarion_matcher_fence_lock();
CREATE FUNCTION clarion_matcher_fence_seq() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  UPDATE matcher_fence SET last_seq = greatest(last_seq, NEW.seq);
  RETURN NEW;
END
$fn$;
CREATE TRIGGER resource_history_matcher_fence AFTER INSERT ON resource_history FOR EACH ROW
  WHEN (NEW.resource_type IN ('Subscription', 'Basic')) EXECUTE FUNCTION clarion_matcher_fence_seq();
-- True when the change's subscription events were numbered with it: the event writer skips it.
ALTER TABLE resource_history ADD COLUMN events_numbered boolean NOT NULL DEFAULT false;
DROP FUNCTION clarion_changes_with_horizon(bigint, integer, text[]);
CREATE FUNCTION clarion_changes_with_horizon(p_after bigint, p_limit integer, p_types text[])
RETURNS TABLE (seq bigint, resource_type text, id text, version_id integer, previous_version_id integer,
               interaction text, method text, last_updated timestamptz, content text, previous_content text,
               events_numbered boolean, last_value bigint, is_called boolean, writers text[])
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
  v_last bigint;
  v_called boolean;
  v_writers text[];
BEGIN
  SELECT h.last_value, h.is_called, h.writers INTO v_last, v_called, v_writers FROM clarion_commit_horizon() h;
  RETURN QUERY SELECT NULL::bigint, NULL::text, NULL::text, NULL::integer, NULL::integer, NULL::text, NULL::text,
    NULL::timestamptz, NULL::text, NULL::text, NULL::boolean, v_last, v_called, v_writers;
  IF v_called AND v_last > p_after THEN
    RETURN QUERY
      SELECT h.seq, h.resource_type, h.id, h.version_id, h.previous_version_id, h.interaction, h.method, h.last_updated,
             CASE WHEN h.resource_type = ANY(p_types) THEN h.content END,
             CASE WHEN h.resource_type = ANY(p_types) AND h.previous_version_id IS NOT NULL THEN
               (SELECT p.content FROM resource_history p
                 WHERE p.resource_type = h.resource_type AND p.id = h.id AND p.version_id = h.previous_version_id) END,
             h.events_numbered, NULL::bigint, NULL::boolean, NULL::text[]
        FROM resource_history h WHERE h.seq > p_after AND h.seq <= v_last ORDER BY h.seq LIMIT p_limit;
  END IF;
END
$fn$;
`,
  },
  {
    version: 11,
    name: 'one matcher fence version per transaction',
    sql: `
-- Migration 10 updated the fence row once per Subscription or Basic row written, so every such row left
-- a dead version. Versions of one transaction cannot be pruned before it ends: a bundle of 500
-- Subscriptions spilled the row over several new pages, and without VACUUM the table only grew (about
-- 110 pages after 40,000 Subscriptions). Every create's gate and every Subscription write's lock scans
-- it all, so creating Subscriptions slowed as they grew (bench/README.md, session 12). Now each row only raises a transaction-local setting; a deferred trigger, at commit and
-- with the fence still locked, writes the transaction's highest number once, and the later firings
-- find it written and change nothing. One version per transaction stays on the row's page (a HOT
-- update, pruned when the page fills), and the gate's guarantee is unchanged: the fence is locked from
-- the first row to the commit, and its last version carries every number the transaction drew.
CREATE OR REPLACE FUNCTION clarion_matcher_fence_seq() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM set_config('clarion.matcher_fence_seq',
    greatest(coalesce(nullif(current_setting('clarion.matcher_fence_seq', true), '')::bigint, 0), NEW.seq)::text, true);
  RETURN NEW;
END
$fn$;
CREATE FUNCTION clarion_matcher_fence_commit() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  v_seq bigint := nullif(current_setting('clarion.matcher_fence_seq', true), '')::bigint;
BEGIN
  UPDATE matcher_fence SET last_seq = v_seq WHERE last_seq < v_seq;
  RETURN NULL;
END
$fn$;
CREATE CONSTRAINT TRIGGER resource_history_matcher_fence_commit AFTER INSERT ON resource_history
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.resource_type IN ('Subscription', 'Basic')) EXECUTE FUNCTION clarion_matcher_fence_commit();
`,
  },
];

const LOCK_KEY = 724_311_001; // arbitrary, constant: serialises migrations across processes

export async function migrate(db: Db): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await tx.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version),
    );
    const applied: number[] = [];
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}
