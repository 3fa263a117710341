/**
 * Numbers the subscription events of plain creates in the statement that stores them (a BatchCompanion
 * of the store's insert batches), instead of leaving them to the event writer's next statement: an
 * event is then durable when its write's 201 goes out, and delivery starts at once. Under write load
 * this takes one database statement, its commit and a wait for a busy event loop off the path from a
 * write to its notification.
 *
 * Correctness rests on the matcher being exactly what the event writer would use for these changes:
 * every Subscription and topic change before them applied, none after. The event writer vouches for its
 * matcher's state (matcherState: committed, as of a sequence number), and the statement's gate proves
 * the rest in the database (matcher_fence, migration 10): it locks the fence row without waiting and
 * finds no Subscription or topic change above that number. Any later one locks the fence before drawing
 * its number, so it is numbered after these creates. If the gate fails, nothing is marked and the event
 * writer numbers the changes as before; if it passes, the change records are marked `events_numbered`
 * and the event writer skips them. Either way the events and the writes commit together.
 */
import type { BatchCompanion, CompanionPart, NewVersionRow } from '../store/insert-batcher.js';
import { NO_QUERIES, NeedsQueries, NumberedEvents, numberedEvent, type EventMatch, type MatchableChange, type MatcherState, type Matcher, type NumberedEvent } from './event-model.js';

export interface InsertTimeEventsDeps {
  matcher: Matcher;
  /** The matcher's committed state, undefined when it is being changed or rebuilt (EventWriter.matcherState). */
  state: () => MatcherState | undefined;
  /** After the events committed (wake whoever delivers), as the event writer's onEvents. */
  onEvents: (events: NumberedEvents) => void;
}

/**
 * After the inserts (`input`, `h`) and the gate: the events of the rows stored, the state rows of their
 * subscriptions locked in id order (as the event writer's statements lock them) and counted, the events
 * stored with consecutive numbers per subscription in change order. Parameters from `$first`: the
 * matcher's sequence number (the gate's), then one element per (row, subscription) match.
 */
function eventClauses(first: number): string {
  const [sub, n, ctx] = [first + 1, first + 2, first + 3];
  return `ev AS (
    SELECT e.sub, e.ctx, i.resource_type, i.id, i.last_updated, h.seq
      FROM unnest($${sub}::text[], $${n}::int[], $${ctx}::text[]) AS e(sub, n, ctx)
      JOIN input i ON i.n = e.n
      JOIN h ON h.resource_type = i.resource_type AND h.id = i.id
     WHERE i.gated),
  wanted AS (SELECT sub, count(*)::int AS k FROM ev GROUP BY sub),
  locked AS (
    SELECT s.subscription_id, w.k FROM subscription_state s JOIN wanted w ON w.sub = s.subscription_id
     WHERE s.status IN ('active', 'error') ORDER BY s.subscription_id FOR UPDATE OF s),
  bumped AS (
    UPDATE subscription_state s SET events_since_start = s.events_since_start + l.k, updated_at = now()
      FROM locked l WHERE s.subscription_id = l.subscription_id
    RETURNING s.subscription_id, s.events_since_start - l.k AS before),
  stored AS ( -- runs although nothing reads it: data-modifying WITH clauses always run to completion
    INSERT INTO subscription_events (subscription_id, event_number, occurred_at, change_seq, focus_type, focus_id, focus_version, interaction, additional_context)
    SELECT ev.sub, b.before + row_number() OVER (PARTITION BY ev.sub ORDER BY ev.seq), ev.last_updated, ev.seq, ev.resource_type, ev.id, 1, 'create', ev.ctx::jsonb
      FROM ev JOIN bumped b ON b.subscription_id = ev.sub),
  companion_out AS (SELECT subscription_id AS a, before AS n FROM bumped)`;
}

/** Types whose changes can change the matcher: a batch with one of them is left to the event writer. */
const MATCHER_TYPES = new Set(['Subscription', 'Basic']);

export class InsertTimeEvents implements BatchCompanion {
  constructor(private readonly deps: InsertTimeEventsDeps) {}

  async prepare(rows: readonly NewVersionRow[], first: number): Promise<CompanionPart | undefined> {
    const types = this.deps.matcher.triggerTypes();
    if (!rows.some((r) => types.has(r.resourceType))) return undefined; // nothing to number: the event writer skips it cheaply
    if (rows.some((r) => MATCHER_TYPES.has(r.resourceType) || !r.stored)) return undefined;
    const before = this.deps.state();
    if (!before) return undefined;
    const matches: { row: number; change: MatchableChange; match: EventMatch }[] = [];
    try {
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i];
        if (!types.has(r.resourceType)) continue;
        const change: MatchableChange = {
          seq: 0, // not known before the insert; matching does not use it
          resourceType: r.resourceType,
          id: r.id,
          versionId: 1,
          interaction: 'create',
          lastUpdated: new Date(r.lastUpdated),
          current: r.stored!.resource,
          currentIndex: r.stored!.index,
        };
        for (const match of await this.deps.matcher.match(change, NO_QUERIES)) matches.push({ row: i, change, match });
      }
    } catch (err) {
      if (err instanceof NeedsQueries) return undefined; // e.g. a revInclude in a notification shape
      throw err;
    }
    // The matcher must not have changed while it matched (its match is async).
    const after = this.deps.state();
    if (!after || after.generation !== before.generation) return undefined;
    return {
      gate: `SELECT 1 FROM matcher_fence WHERE last_seq <= $${first} FOR UPDATE SKIP LOCKED`,
      ctes: eventClauses(first),
      params: [
        after.seq,
        matches.map((m) => m.match.subscriptionId),
        matches.map((m) => m.row + 1),
        matches.map((m) => JSON.stringify(m.match.additionalContext.map((reference) => ({ reference })))),
      ],
      done: ({ seqs, gated, out }) => {
        if (!gated) return;
        const numbered = new NumberedEvents();
        for (const { a: subscriptionId, n: before } of out) {
          const events: NumberedEvent[] = [];
          let channelType = '';
          for (const { row, change, match } of matches) {
            if (match.subscriptionId !== subscriptionId || seqs[row] === undefined) continue;
            channelType = match.channelType;
            events.push(numberedEvent(change, match, before + events.length + 1));
          }
          if (events.length > 0) numbered.bySubscription.set(subscriptionId, { channelType, events });
        }
        if (numbered.size > 0) this.deps.onEvents(numbered);
      },
    };
  }
}
