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
import type { ChangeFeed, ChangeRecord } from '../capture/change-feed.js';
import type { Clock, Db, Queryable } from '../store/db.js';
import type { SubscriptionSpec } from './subscription-model.js';
import { stateFromSpec, upsertSubscriptionState } from './subscription-state.js';

export const EVENT_WRITER_CONSUMER = 'subscription-events';

/** A change with its content, as the matcher sees it. */
export interface MatchableChange {
  seq: number;
  resourceType: string;
  id: string;
  versionId: number;
  interaction: 'create' | 'update' | 'delete';
  lastUpdated: Date;
  previous?: Resource;
  current?: Resource;
}

export interface EventMatch {
  subscriptionId: string;
  /** References (`Type/id`) of additional-context resources (the topic's notificationShape). */
  additionalContext: string[];
}

/** Decides which subscriptions a change triggers (topics, triggers, filters: see subscription-matcher.ts). */
export interface Matcher {
  /** Resource types any topic triggers on (other changes are skipped without loading content). */
  triggerTypes(): ReadonlySet<string>;
  /** Adds or replaces a subscription; only `active`/`error` subscriptions get events. */
  upsertSubscription(spec: SubscriptionSpec): void;
  removeSubscription(id: string): void;
  /** A topic carried by a resource (R4 Basic-wrapped) was created, updated or deleted. */
  topicResourceChanged(resource: Resource | undefined, id: string): void;
  match(change: MatchableChange, q: Queryable): Promise<EventMatch[]>;
  /** Forget everything (before a rebuild). */
  clear(): void;
}

/** Reads stored resources into the neutral forms (wire-version specific, so passed in). */
export interface SubscriptionSource {
  specFromResource(resource: Resource): SubscriptionSpec | undefined;
  /** True if the resource is a topic definition (e.g. an R4 Basic-wrapped SubscriptionTopic). */
  isTopicResource(resource: Resource): boolean;
}

export interface EventWriterDeps {
  db: Db;
  feed: ChangeFeed;
  matcher: Matcher;
  source: SubscriptionSource;
  clock: Clock;
  /** rest-hook handshakes wait this long after a create, so the 201 goes out first. */
  handshakeDelayMs: number;
  /** Called after events committed (wake the delivery worker). */
  onEvents: () => void;
  onError?: (err: unknown) => void;
}

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
  /** Set by a batch that wrote events or subscription state; the worker is woken after its commit. */
  private wakeAfterCommit = false;
  private consumer?: { stop: () => Promise<void>; idle: () => Promise<void> };

  constructor(private readonly deps: EventWriterDeps) {}

  start(): void {
    this.consumer = this.deps.feed.consume(EVENT_WRITER_CONSUMER, (changes, tx) => this.handle(changes, tx), {
      skippable: (changes, position) => this.skippable(changes, position),
      afterCommit: () => {
        if (!this.wakeAfterCommit) return;
        this.wakeAfterCommit = false;
        this.deps.onEvents();
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
    const types = this.deps.matcher.triggerTypes();
    if (changes.some((c) => c.resourceType === 'Subscription' || c.resourceType === 'Basic' || types.has(c.resourceType))) return false;
    // Nothing in the batch changes the matcher either, so it now reflects the batch's end too.
    this.matcherSeq = changes[changes.length - 1].seq;
    return true;
  }

  private async handle(changes: ChangeRecord[], tx: Queryable): Promise<void> {
    const start = changes[0].seq - 1;
    try {
      await this.catchUp(tx, start);
      const loaded = await this.loadContent(tx, changes);
      const bySubscription = new Map<string, { change: MatchableChange; match: EventMatch }[]>();
      let stateChanged = false;
      for (const change of loaded) {
        if (change.resourceType === 'Subscription') {
          await this.applySubscription(tx, change);
          stateChanged = true;
          continue;
        }
        if (change.current && this.deps.source.isTopicResource(change.current)) this.deps.matcher.topicResourceChanged(change.current, change.id);
        else if (change.interaction === 'delete' && change.previous && this.deps.source.isTopicResource(change.previous)) {
          this.deps.matcher.topicResourceChanged(undefined, change.id);
        }
        if (!this.deps.matcher.triggerTypes().has(change.resourceType)) continue;
        for (const match of await this.deps.matcher.match(change, tx)) {
          let list = bySubscription.get(match.subscriptionId);
          if (!list) bySubscription.set(match.subscriptionId, (list = []));
          list.push({ change, match });
        }
      }
      let wrote = 0;
      wrote += await writeEvents(tx, bySubscription);
      this.matcherSeq = changes[changes.length - 1].seq;
      if (wrote > 0 || stateChanged) this.wakeAfterCommit = true;
    } catch (err) {
      // The transaction rolls back: the matcher may hold state that never committed. Rebuild next time.
      this.matcherSeq = -1;
      throw err;
    }
  }

  /** Brings the matcher to the state as of `seq` (rebuild, or replay subscription/topic changes). */
  private async catchUp(tx: Queryable, seq: number): Promise<void> {
    if (this.matcherSeq === seq) return;
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

  /** Loads the current and previous content of the changes the matcher needs to see. */
  private async loadContent(tx: Queryable, changes: ChangeRecord[]): Promise<MatchableChange[]> {
    const triggerTypes = this.deps.matcher.triggerTypes();
    const needed = changes.filter((c) => c.resourceType === 'Subscription' || c.resourceType === 'Basic' || triggerTypes.has(c.resourceType));
    const current = new Map<number, Resource>();
    const previous = new Map<string, Resource>();
    if (needed.length > 0) {
      const { rows } = await tx.query<ContentRow>(
        'SELECT seq, resource_type, id, version_id, content FROM resource_history WHERE seq = ANY($1::bigint[]) AND content IS NOT NULL',
        [needed.map((c) => c.seq)],
      );
      for (const r of rows) current.set(Number(r.seq), JSON.parse(r.content!) as Resource);
      const prev = needed.filter((c) => c.previousVersionId !== null);
      if (prev.length > 0) {
        const res = await tx.query<ContentRow>(
          `SELECT h.seq, h.resource_type, h.id, h.version_id, h.content FROM resource_history h
             JOIN unnest($1::text[], $2::text[], $3::int[]) AS k(t, i, v) ON h.resource_type = k.t AND h.id = k.i AND h.version_id = k.v
            WHERE h.content IS NOT NULL`,
          [prev.map((c) => c.resourceType), prev.map((c) => c.id), prev.map((c) => c.previousVersionId)],
        );
        for (const r of res.rows) previous.set(`${r.resource_type}/${r.id}/${r.version_id}`, JSON.parse(r.content!) as Resource);
      }
    }
    return changes.map((c) => ({
      seq: c.seq,
      resourceType: c.resourceType,
      id: c.id,
      versionId: c.versionId,
      interaction: c.interaction,
      lastUpdated: c.lastUpdated,
      current: current.get(c.seq),
      previous: c.previousVersionId !== null ? previous.get(`${c.resourceType}/${c.id}/${c.previousVersionId}`) : undefined,
    }));
  }
}

/**
 * Allocates the next event numbers of the triggered subscriptions and stores their events, in two
 * statements however many subscriptions a change triggers (a topic with 10,000 unfiltered
 * subscriptions is one UPDATE and one INSERT, not 20,000 statements); returns how many events.
 * Only `active` and `error` subscriptions count events (an `error` subscription still counts: the IG
 * requires events-since-subscription-start to include undelivered events). One event-writer
 * transaction runs at a time (the feed position row is locked per batch), so the multi-row UPDATE
 * cannot deadlock with another writer.
 */
async function writeEvents(tx: Queryable, bySubscription: Map<string, { change: MatchableChange; match: EventMatch }[]>): Promise<number> {
  if (bySubscription.size === 0) return 0;
  const ids = [...bySubscription.keys()];
  const { rows } = await tx.query<{ subscription_id: string; last: number | string }>(
    `UPDATE subscription_state s SET events_since_start = s.events_since_start + c.n, updated_at = now()
       FROM unnest($1::text[], $2::int[]) AS c(id, n)
      WHERE s.subscription_id = c.id AND s.status IN ('active', 'error')
      RETURNING s.subscription_id, s.events_since_start AS last`,
    [ids, ids.map((id) => bySubscription.get(id)!.length)],
  );
  const cols = { sid: [] as string[], n: [] as number[], o: [] as string[], s: [] as number[], ft: [] as string[], fi: [] as string[], fv: [] as number[], i: [] as string[], ac: [] as string[] };
  for (const row of rows) {
    const events = bySubscription.get(row.subscription_id)!;
    const first = Number(row.last) - events.length + 1;
    events.forEach((e, k) => {
      cols.sid.push(row.subscription_id);
      cols.n.push(first + k);
      cols.o.push(e.change.lastUpdated.toISOString());
      cols.s.push(e.change.seq);
      cols.ft.push(e.change.resourceType);
      cols.fi.push(e.change.id);
      cols.fv.push(e.change.versionId);
      cols.i.push(e.change.interaction);
      cols.ac.push(JSON.stringify(e.match.additionalContext.map((reference) => ({ reference }))));
    });
  }
  if (cols.sid.length === 0) return 0;
  await tx.query(
    `INSERT INTO subscription_events (subscription_id, event_number, occurred_at, change_seq, focus_type, focus_id, focus_version, interaction, additional_context)
     SELECT sid, n, o, s, ft, fi, fv, i, ac::jsonb
       FROM unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::bigint[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[]) AS e(sid, n, o, s, ft, fi, fv, i, ac)`,
    [cols.sid, cols.n, cols.o, cols.s, cols.ft, cols.fi, cols.fv, cols.i, cols.ac],
  );
  return cols.sid.length;
}
