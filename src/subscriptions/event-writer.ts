/**
 * The event writer: the change-feed consumer that turns committed changes into numbered subscription
 * events. For each change, in commit order, it asks the matcher which subscriptions the change
 * triggers, allocates their next event numbers and stores the events — in the same transaction that
 * advances the feed position, so a crash never loses or duplicates an event number, and numbers are
 * gap-free per subscription whether or not delivery later succeeds.
 *
 * Subscription and topic resources are changes too: they are applied to the matcher at their place in
 * the sequence, so a subscription matches exactly the changes committed after it became active. Each
 * process's matcher tracks the sequence number it reflects and catches up from the history table before
 * a batch, so several processes can share the consumer.
 */
import type { Resource } from 'fhir/r4.js';
import { positionAdvance, type ChangeFeed, type ChangeRecord, type PositionAdvance } from '../capture/change-feed.js';
import type { Clock, Db, Queryable, QueryOptions } from '../store/db.js';
import { NO_QUERIES, NeedsQueries, NumberedEvents, numberedEvent, type EventMatch, type MatchableChange, type Matcher, type MatcherState, type SubscriptionSource } from './event-model.js';
import { stateFromSpec, upsertSubscriptionState } from './subscription-state.js';

export const EVENT_WRITER_CONSUMER = 'subscription-events';

export interface EventWriterDeps {
  db: Db;
  feed: ChangeFeed;
  matcher: Matcher;
  source: SubscriptionSource;
  clock: Clock;
  /** rest-hook handshakes wait this long after a create, so the 201 goes out first. */
  handshakeDelayMs: number;
  /**
   * Called after a batch committed with events or subscription changes (wake whoever delivers). The
   * events are handed over too, so a deliverer in this process need not read back what was just written.
   */
  onEvents: (events: NumberedEvents) => void;
  onError?: (err: unknown) => void;
}

type BySubscription = Map<string, { change: MatchableChange; match: EventMatch }[]>;

interface ContentRow {
  seq: number | string;
  resource_type: string;
  id: string;
  version_id: number;
  content: string | null;
}

export class EventWriter {
  /** Sequence number the matcher reflects; -1 = needs a rebuild. */
  private matcherSeq = -1;
  /** Bumped on every change to the matcher's subscriptions or topics. */
  private generation = 0;
  /**
   * False while a batch may have changed the matcher before its transaction committed (the state rows
   * of the subscriptions it applied are not visible yet), and after a failure until a batch commits.
   */
  private settled = false;
  /** What the batch in progress numbered; handed to onEvents after its commit. */
  private written = new NumberedEvents();
  private consumer?: { stop: () => Promise<void>; idle: () => Promise<void> };

  constructor(private readonly deps: EventWriterDeps) {}

  start(): void {
    this.consumer = this.deps.feed.consume(EVENT_WRITER_CONSUMER, (changes, tx, batch) => this.handle(changes, tx, batch.after), {
      skippable: (changes, position) => this.skippable(changes, position),
      contentTypes: () => this.contentTypes(),
      oneStatement: (changes, advance) => this.handleInOneStatement(changes, advance),
      afterCommit: () => {
        this.settled = true;
        const written = this.written;
        this.written = new NumberedEvents();
        if (written.size > 0 || written.subscriptionsChanged) this.deps.onEvents(written);
      },
    });
  }

  /** Resolves when every change committed before the call has been turned into events. */
  async idle(): Promise<void> {
    await this.consumer?.idle();
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
  }

  /**
   * The matcher, if its state is committed: a caller may match with it now and number events itself,
   * provided the database proves no Subscription or topic change after `seq` is committed or in flight
   * (the matcher_fence, migration 10) and `generation` is unchanged once it has matched.
   */
  matcherState(): MatcherState | undefined {
    if (!this.settled || this.matcherSeq < 0) return undefined;
    return { seq: this.matcherSeq, generation: this.generation };
  }

  /** Types whose content the matcher needs: subscriptions, topic resources, and what topics in use trigger on. */
  private contentTypes(): ReadonlySet<string> {
    const types = new Set(this.deps.matcher.triggerTypes());
    types.add('Subscription');
    types.add('Basic');
    return types;
  }

  /**
   * True when no change of the batch can matter: none is a Subscription or topic resource, and none is
   * of a type a topic in use triggers on — judged with the matcher as of the batch start.
   */
  private async skippable(changes: ChangeRecord[], position: number): Promise<boolean> {
    try {
      await this.catchUp(this.deps.db, position);
    } catch (err) {
      this.matcherSeq = -1;
      throw err;
    }
    // Caught up from committed history to a committed position: the state rows it implies are visible.
    this.settled = true;
    const types = this.deps.matcher.triggerTypes();
    const relevant = (c: ChangeRecord): boolean => c.resourceType === 'Subscription' || c.resourceType === 'Basic' || (types.has(c.resourceType) && !c.eventsNumbered);
    if (changes.some(relevant)) return false;
    // Nothing in the batch changes the matcher either, so it now reflects the batch's end too.
    this.matcherSeq = changes[changes.length - 1].seq;
    return true;
  }

  private async handle(changes: ChangeRecord[], tx: Queryable, after: number): Promise<void> {
    this.written = new NumberedEvents();
    this.settled = false;
    try {
      await this.catchUp(tx, after);
      const loaded = changes.map(toMatchable);
      const bySubscription: BySubscription = new Map();
      for (let i = 0; i < loaded.length; i++) {
        const change = loaded[i];
        // A subscription earlier in this batch may have made this type relevant after the batch was read.
        if (!change.contentRead && this.needsContent(change)) await this.loadContent(tx, loaded.slice(i).filter((c) => !c.contentRead && this.needsContent(c)));
        if (change.resourceType === 'Subscription') {
          await this.applySubscription(tx, change);
          this.written.subscriptionsChanged = true;
          continue;
        }
        if (change.resourceType === 'Basic') this.generation++;
        if (change.current && this.deps.source.isTopicResource(change.current)) this.deps.matcher.topicResourceChanged(change.current, change.id);
        else if (change.interaction === 'delete' && change.previous && this.deps.source.isTopicResource(change.previous)) {
          this.deps.matcher.topicResourceChanged(undefined, change.id);
        }
        await this.collect(change, tx, bySubscription);
      }
      await writeEvents(tx, bySubscription, this.written);
      this.matcherSeq = changes[changes.length - 1].seq;
    } catch (err) {
      // The transaction rolls back: the matcher may hold state that never committed. Rebuild next time.
      this.matcherSeq = -1;
      this.written = new NumberedEvents();
      throw err;
    }
  }

  /** Adds the events `change` triggers to `bySubscription`. */
  private async collect(change: LoadedChange, q: Queryable, bySubscription: BySubscription): Promise<void> {
    // Numbered in the statement that stored it (insert-time-events.ts).
    if (change.eventsNumbered) return;
    if (!this.deps.matcher.triggerTypes().has(change.resourceType)) return;
    for (const match of await this.deps.matcher.match(change, q)) {
      let list = bySubscription.get(match.subscriptionId);
      if (!list) bySubscription.set(match.subscriptionId, (list = []));
      list.push({ change, match });
    }
  }

  /**
   * The usual batch — resources changed, no Subscription or topic among them, content read with the
   * changes, no query needed to match — numbered and stored in the statement that advances the feed
   * position (the feed's oneStatement): under load each round trip waits its turn on a busy event
   * loop, and this saves three of the five a batch took. Undefined for any other batch.
   */
  private async handleInOneStatement(changes: ChangeRecord[], advance: PositionAdvance): Promise<boolean | undefined> {
    // skippable() ran first and brought the matcher to the batch start; anything else takes the usual way.
    if (this.matcherSeq !== advance.after) return undefined;
    if (changes.some((c) => c.resourceType === 'Subscription' || c.resourceType === 'Basic')) return undefined;
    const loaded = changes.map(toMatchable);
    if (loaded.some((c) => !c.contentRead && this.needsContent(c))) return undefined;
    const bySubscription: BySubscription = new Map();
    try {
      for (const change of loaded) await this.collect(change, NO_QUERIES, bySubscription);
    } catch (err) {
      if (err instanceof NeedsQueries) return undefined; // e.g. a revInclude in a notification shape
      throw err;
    }
    const written = new NumberedEvents();
    const advanced = await writeEvents(this.deps.db, bySubscription, written, advance);
    if (!advanced) return false;
    this.matcherSeq = advance.to;
    this.written = written;
    return true;
  }

  private needsContent(change: LoadedChange): boolean {
    if (change.eventsNumbered) return false;
    return change.resourceType === 'Subscription' || change.resourceType === 'Basic' || this.deps.matcher.triggerTypes().has(change.resourceType);
  }

  /** Brings the matcher to the state as of `seq` (rebuild, or replay subscription/topic changes). */
  private async catchUp(tx: Queryable, seq: number): Promise<void> {
    if (this.matcherSeq === seq) return;
    this.generation++;
    if (this.matcherSeq < 0 || this.matcherSeq > seq) {
      this.deps.matcher.clear();
      // The latest version of every subscription and topic resource as of `seq`.
      const { rows } = await tx.query<ContentRow>(
        `SELECT DISTINCT ON (resource_type, id) seq, resource_type, id, version_id, content FROM resource_history
          WHERE resource_type IN ('Subscription', 'Basic') AND seq <= $1 ORDER BY resource_type, id, seq DESC`,
        [seq],
      );
      for (const row of rows) this.applyRow(row);
    } else {
      const { rows } = await tx.query<ContentRow>(
        `SELECT seq, resource_type, id, version_id, content FROM resource_history
          WHERE resource_type IN ('Subscription', 'Basic') AND seq > $1 AND seq <= $2 ORDER BY seq`,
        [this.matcherSeq, seq],
      );
      for (const row of rows) this.applyRow(row);
    }
    this.matcherSeq = seq;
  }

  private applyRow(row: ContentRow): void {
    this.generation++;
    const resource = row.content ? (JSON.parse(row.content) as Resource) : undefined;
    if (row.resource_type === 'Subscription') {
      const spec = resource ? this.deps.source.specFromResource(resource) : undefined;
      if (spec) this.deps.matcher.upsertSubscription(spec);
      else this.deps.matcher.removeSubscription(row.id);
    } else if (!resource || this.deps.source.isTopicResource(resource)) {
      this.deps.matcher.topicResourceChanged(resource, row.id);
    }
  }

  private async applySubscription(tx: Queryable, change: MatchableChange): Promise<void> {
    this.generation++;
    const spec = change.current ? this.deps.source.specFromResource(change.current) : undefined;
    if (!spec) {
      this.deps.matcher.removeSubscription(change.id);
      await tx.query(`UPDATE subscription_state SET status = 'off', subscription_version = $2, updated_at = now()
        WHERE subscription_id = $1 AND subscription_version < $2`, [change.id, change.versionId]);
      return;
    }
    this.deps.matcher.upsertSubscription(spec);
    const dueAt = new Date(this.deps.clock.now().getTime() + this.deps.handshakeDelayMs);
    await upsertSubscriptionState(tx, stateFromSpec(spec, change.versionId), dueAt);
  }

  /** Loads the current and previous content of changes the feed read without it (in place). */
  private async loadContent(tx: Queryable, changes: LoadedChange[]): Promise<void> {
    const { rows } = await tx.query<ContentRow>(
      'SELECT seq, resource_type, id, version_id, content FROM resource_history WHERE seq = ANY($1::bigint[]) AND content IS NOT NULL',
      [changes.map((c) => c.seq)],
    );
    const current = new Map(rows.map((r) => [Number(r.seq), JSON.parse(r.content!) as Resource]));
    const prev = changes.filter((c) => c.previousVersionId !== null);
    const previous = new Map<string, Resource>();
    if (prev.length > 0) {
      const res = await tx.query<ContentRow>(
        `SELECT h.seq, h.resource_type, h.id, h.version_id, h.content FROM resource_history h
           JOIN unnest($1::text[], $2::text[], $3::int[]) AS k(t, i, v) ON h.resource_type = k.t AND h.id = k.i AND h.version_id = k.v
          WHERE h.content IS NOT NULL`,
        [prev.map((c) => c.resourceType), prev.map((c) => c.id), prev.map((c) => c.previousVersionId)],
      );
      for (const r of res.rows) previous.set(`${r.resource_type}/${r.id}/${r.version_id}`, JSON.parse(r.content!) as Resource);
    }
    for (const c of changes) {
      c.current = current.get(c.seq);
      c.previous = c.previousVersionId !== null ? previous.get(`${c.resourceType}/${c.id}/${c.previousVersionId}`) : undefined;
      c.contentRead = true;
    }
  }
}

/** A change being handled: its content parsed if the feed read it (`contentRead`). */
interface LoadedChange extends MatchableChange {
  previousVersionId: number | null;
  contentRead: boolean;
  eventsNumbered: boolean;
}

function toMatchable(c: ChangeRecord): LoadedChange {
  const contentRead = c.content !== undefined;
  return {
    seq: c.seq,
    resourceType: c.resourceType,
    id: c.id,
    versionId: c.versionId,
    previousVersionId: c.previousVersionId,
    interaction: c.interaction,
    lastUpdated: c.lastUpdated,
    contentRead,
    eventsNumbered: c.eventsNumbered === true,
    current: c.content ? (JSON.parse(c.content) as Resource) : undefined,
    previous: c.previousContent ? (JSON.parse(c.previousContent) as Resource) : undefined,
  };
}

/**
 * Allocates the next event numbers of the triggered subscriptions and stores their events in one
 * statement however many subscriptions a change triggers (a topic with 10,000 unfiltered subscriptions
 * is one statement, not 20,000), and records them in `out`. With `advance`, the same statement moves the
 * feed position and writes nothing unless it did; false then means the position had moved.
 * Only `active` and `error` subscriptions count events (an `error` subscription still counts: the IG
 * requires events-since-subscription-start to include undelivered events). One event-writer batch
 * runs at a time (the feed position row is locked or compared-and-set per batch), so the multi-row
 * UPDATE cannot deadlock with another writer.
 */
async function writeEvents(q: Queryable, bySubscription: BySubscription, out: NumberedEvents, advance?: PositionAdvance): Promise<boolean> {
  if (bySubscription.size === 0) {
    if (!advance) return true;
    const gate = positionAdvance(advance, 1);
    return (await q.query(gate.sql, gate.params, REUSE_PLAN)).rowCount === 1;
  }
  const rows = (await writeOneEventEach(q, bySubscription, advance)) ?? (await writeAnyEvents(q, bySubscription, advance));
  if (advance && Number(rows[0]?.advanced ?? 0) !== 1) return false;
  for (const row of rows) {
    if (row.subscription_id === null) continue;
    const events = bySubscription.get(row.subscription_id)!;
    const before = Number(row.before);
    out.bySubscription.set(row.subscription_id, {
      channelType: events[0].match.channelType,
      events: events.map((e, k) => numberedEvent(e.change, e.match, before + k + 1)),
    });
  }
  return true;
}

/**
 * Event statements update subscription_state by key (its statistics are refreshed as it grows:
 * statistics-refresh.ts), the feed position row (a handful of rows) and insert events: a reused plan
 * stays right. Planning the event statement took longer than running it.
 */
const REUSE_PLAN: QueryOptions = { reusePlan: true };

/*
 * Event statements lock the subscriptions' state rows in id order before counting (`locked`: FOR UPDATE
 * applies after the sort). Creates number their events in their own statements too
 * (insert-time-events.ts, same order), and two statements locking several of the same rows in
 * different orders could deadlock.
 */
/** One row per numbered subscription (at least one row: subscription_id null when none was); `advanced` 1 or 0 on every row. */
type Bumped = { advanced: number | string; subscription_id: string | null; before: number | string | null }[];

/**
 * The gate every event statement starts with: the position advance when there is one (its parameters
 * follow the statement's own, from `$first`), else a row that is always there.
 */
function gateOf(advance: PositionAdvance | undefined, first: number): { sql: string; params: unknown[] } {
  return advance ? positionAdvance(advance, first) : { sql: 'SELECT 1', params: [] };
}

/** What an event statement returns, from its `bumped (subscription_id, before)` clause and the gate. */
const BUMPED_ROWS = `SELECT (SELECT count(*) FROM advanced) AS advanced, b.subscription_id, b.before FROM (SELECT 1) AS one LEFT JOIN bumped b ON true`;

/**
 * The common batch — one change, one event for each subscription, the same additional context — with
 * the event's columns passed once instead of once per subscription: with 10,000 subscriptions the
 * statement takes ~30% less time (fewer array elements to parse and join). Undefined for other batches.
 */
async function writeOneEventEach(q: Queryable, bySubscription: BySubscription, advance: PositionAdvance | undefined): Promise<Bumped | undefined> {
  let first: { change: MatchableChange; context: string } | undefined;
  for (const events of bySubscription.values()) {
    if (events.length !== 1) return undefined;
    const context = JSON.stringify(events[0].match.additionalContext.map((reference) => ({ reference })));
    if (!first) first = { change: events[0].change, context };
    else if (events[0].change !== first.change || context !== first.context) return undefined;
  }
  const { change, context } = first!;
  const gate = gateOf(advance, 9);
  const { rows } = await q.query<Bumped[number]>(
    `WITH advanced AS (${gate.sql}), locked AS (
       SELECT s.subscription_id FROM subscription_state s
        WHERE s.subscription_id = ANY($1::text[]) AND s.status IN ('active', 'error') AND EXISTS (SELECT 1 FROM advanced)
        ORDER BY s.subscription_id FOR UPDATE OF s
     ), bumped AS (
       UPDATE subscription_state s SET events_since_start = s.events_since_start + 1, updated_at = now()
         FROM locked l WHERE s.subscription_id = l.subscription_id
       RETURNING s.subscription_id, s.events_since_start - 1 AS before
     ), stored AS ( -- runs although nothing reads it: data-modifying WITH clauses always run to completion
       INSERT INTO subscription_events (subscription_id, event_number, occurred_at, change_seq, focus_type, focus_id, focus_version, interaction, additional_context)
       SELECT b.subscription_id, b.before + 1, $2::timestamptz, $3::bigint, $4::text, $5::text, $6::int, $7::text, $8::jsonb FROM bumped b
     )
     ${BUMPED_ROWS}`,
    [[...bySubscription.keys()], change.lastUpdated.toISOString(), change.seq, change.resourceType, change.id, change.versionId, change.interaction, context, ...gate.params],
    REUSE_PLAN,
  );
  return rows;
}

async function writeAnyEvents(q: Queryable, bySubscription: BySubscription, advance: PositionAdvance | undefined): Promise<Bumped> {
  const ids = [...bySubscription.keys()];
  const cols = { sid: [] as string[], k: [] as number[], o: [] as string[], s: [] as number[], ft: [] as string[], fi: [] as string[], fv: [] as number[], i: [] as string[], ac: [] as string[] };
  for (const [id, events] of bySubscription) {
    events.forEach((e, k) => {
      cols.sid.push(id);
      cols.k.push(k + 1);
      cols.o.push(e.change.lastUpdated.toISOString());
      cols.s.push(e.change.seq);
      cols.ft.push(e.change.resourceType);
      cols.fi.push(e.change.id);
      cols.fv.push(e.change.versionId);
      cols.i.push(e.change.interaction);
      cols.ac.push(JSON.stringify(e.match.additionalContext.map((reference) => ({ reference }))));
    });
  }
  const gate = gateOf(advance, 12);
  // The k-th event of a subscription gets number (counter before the batch) + k.
  const { rows } = await q.query<Bumped[number]>(
    `WITH advanced AS (${gate.sql}), locked AS (
       SELECT s.subscription_id, c.n FROM subscription_state s
         JOIN unnest($1::text[], $2::int[]) AS c(id, n) ON s.subscription_id = c.id
        WHERE s.status IN ('active', 'error') AND EXISTS (SELECT 1 FROM advanced)
        ORDER BY s.subscription_id FOR UPDATE OF s
     ), bumped AS (
       UPDATE subscription_state s SET events_since_start = s.events_since_start + l.n, updated_at = now()
         FROM locked l WHERE s.subscription_id = l.subscription_id
       RETURNING s.subscription_id, s.events_since_start - l.n AS before
     ), stored AS ( -- runs although nothing reads it: data-modifying WITH clauses always run to completion
       INSERT INTO subscription_events (subscription_id, event_number, occurred_at, change_seq, focus_type, focus_id, focus_version, interaction, additional_context)
       SELECT e.sid, b.before + e.k, e.o, e.s, e.ft, e.fi, e.fv, e.i, e.ac::jsonb
         FROM unnest($3::text[], $4::int[], $5::timestamptz[], $6::bigint[], $7::text[], $8::text[], $9::int[], $10::text[], $11::text[]) AS e(sid, k, o, s, ft, fi, fv, i, ac)
         JOIN bumped b ON b.subscription_id = e.sid
     )
     ${BUMPED_ROWS}`,
    [ids, ids.map((id) => bySubscription.get(id)!.length), cols.sid, cols.k, cols.o, cols.s, cols.ft, cols.fi, cols.fv, cols.i, cols.ac, ...gate.params],
    REUSE_PLAN,
  );
  return rows;
}
