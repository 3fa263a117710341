/**
 * The ordered change feed: reads change records (resource_history rows) in sequence order, up to the
 * commit horizon, exactly once per named consumer, resuming from a position persisted in
 * `feed_positions`.
 *
 * Exactly once: a consumer's handler runs in the same database transaction that advances its position,
 * so its database effects and the new position commit together. The position row is locked for the
 * batch (`FOR UPDATE SKIP LOCKED`), so across several processes one batch of one consumer runs at a
 * time, in order.
 *
 * Prompt wake-up: writers call `changed()` after commit; it wakes local consumers at once and sends one
 * coalesced NOTIFY (in its own statement, never inside the data transaction) for other processes. A
 * short poll is the safety net for lost notifications.
 *
 * Changes committed in this process can be handed over (`offer`) rather than read back: a consumer
 * takes offered changes without a read when they continue its position with consecutive numbers — the
 * same proof as CommitHorizon.advance (each number is drawn once, so a gap-free run of committed
 * changes right above a final point is final whatever else is in flight). At the first gap (another
 * process's write, a rolled-back number, a change not offered) it reads as usual, and a wake-up for
 * changes that were not offered (a NOTIFY, a transaction's commit) makes the next batch read.
 *
 * Batches a consumer skips (its handler would do nothing) move its position in memory only; it is
 * persisted by the next batch handled, or at most every skippedPersistMs. Under a write load whose
 * events are all numbered at insert (src/subscriptions/insert-time-events.ts) that was one statement
 * and one commit per insert batch, as many as the writes' own.
 */
import { randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../store/db.js';
import type { CommittedVersion } from '../store/resource-store.js';
import { CommitHorizon, type HorizonReading } from './commit-horizon.js';
import { ConsumerLoop, type ChangeHandler, type ChangeRecord, type ConsumeOptions, type ConsumerFeed } from './consumer-loop.js';

export { positionAdvance, type ChangeHandler, type ChangeRecord, type ConsumeOptions, type PositionAdvance } from './consumer-loop.js';

export const CHANGES_CHANNEL = 'clarion_changes';

export interface ChangeFeedOptions {
  /** Safety-net poll interval (ms); default 250. */
  pollIntervalMs?: number;
  /** Records per handler call; default 500. */
  batchSize?: number;
  /** Errors thrown by handlers or the database (the consumer retries after a pause). */
  onError?: (err: unknown, consumer: string) => void;
  /**
   * How often (ms) a consumer persists a position it reached by skipping batches only (ConsumeOptions.skippable);
   * default 1000. A crash re-reads at most that much, and skips it again.
   */
  skippedPersistMs?: number;
}

interface ChangeRow {
  seq: number | string;
  resource_type: string;
  id: string;
  version_id: number;
  previous_version_id: number | null;
  interaction: ChangeRecord['interaction'];
  method: string;
  last_updated: Date | string;
  content?: string | null;
  previous_content?: string | null;
  events_numbered?: boolean | null;
}

export class ChangeFeed implements ConsumerFeed {
  private readonly horizon: CommitHorizon;
  private readonly consumers = new Set<ConsumerLoop>();
  private unlisten?: () => Promise<void>;
  private notifyInFlight = false;
  private notifyAgain = false;
  private closed = false;
  /** Horizon readings are applied in the order they were taken: one reading at a time. */
  private readings: Promise<unknown> = Promise.resolve();
  /** offer() was called since the last changed(): the commit changed() reports was offered (both run in one synchronous block). */
  private offeredSinceChanged = false;
  /** Sent as the NOTIFY payload, so this feed ignores its own notifications (each would cost a horizon read). */
  private readonly token = randomUUID();
  readonly pollIntervalMs: number;
  readonly batchSize: number;
  readonly skippedPersistMs: number;

  constructor(
    private readonly db: Db,
    private readonly options: ChangeFeedOptions = {},
  ) {
    this.horizon = new CommitHorizon(db.kind === 'pglite');
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.batchSize = options.batchSize ?? 500;
    this.skippedPersistMs = options.skippedPersistMs ?? 1000;
  }

  /** Starts listening for other processes' notifications (this feed's own were acted on when sent). */
  async start(): Promise<void> {
    this.unlisten = await this.db.listen(CHANGES_CHANNEL, (payload) => {
      if (payload !== this.token) this.wakeAll();
    });
  }

  /**
   * Hands a change committed in this process to the local consumers (call before `changed()`). Its
   * content must be the stored text (null for a deletion), as a read would return it.
   */
  offer(change: CommittedVersion): void {
    if (this.closed) return;
    this.offeredSinceChanged = true;
    for (const c of this.consumers) c.offer(change);
  }

  /** A consumer proved every number up to `upTo` final (a gap-free run of committed changes above a final point). */
  provedFinal(upTo: number): void {
    this.horizon.advance(upTo);
  }

  /** Call after a write committed: wakes local consumers now and other processes via NOTIFY. */
  changed(): void {
    if (this.closed) return;
    // A commit whose changes were not offered (a transaction's) can only be found by a read.
    this.wakeAll(!this.offeredSinceChanged);
    this.offeredSinceChanged = false;
    if (this.notifyInFlight) {
      this.notifyAgain = true;
      return;
    }
    this.notifyInFlight = true;
    const send = (): void => {
      this.db
        .notify(CHANGES_CHANNEL, this.token)
        .catch((err: unknown) => this.options.onError?.(err, 'notify'))
        .finally(() => {
          if (this.notifyAgain && !this.closed) {
            this.notifyAgain = false;
            send();
          } else {
            this.notifyInFlight = false;
          }
        });
    };
    send();
  }

  private oneReadingAtATime<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.readings.then(fn, fn);
    this.readings = run.catch(() => undefined);
    return run;
  }

  /**
   * Refreshes the horizon and reads up to `limit` final changes after `after` in one round trip
   * (migration 7): the changes are read after the horizon's writer check, so every change at or below
   * the new horizon is in the read; those above it are dropped (read again once final). `after` must
   * be final itself (a consumer's position, or a point it scanned up to the horizon).
   */
  async readWithHorizon(after: number, limit: number, contentTypes?: ReadonlySet<string>, q: Queryable = this.db): Promise<{ upTo: number; changes: ChangeRecord[] }> {
    return this.oneReadingAtATime(async () => {
      const types = contentTypes && contentTypes.size > 0 ? [...contentTypes] : [];
      const { rows } = await q.query<ChangeRow & HorizonReading>(
        `SELECT seq, resource_type, id, version_id, previous_version_id, interaction, method, last_updated, content, previous_content,
                events_numbered, last_value, is_called, writers
           FROM clarion_changes_with_horizon($1, $2, $3::text[])`,
        [after, limit, types],
      );
      let upTo = this.horizon.apply(rows[0]);
      // Everything up to max(after, upTo) is final; consecutive visible changes right above it are too
      // (CommitHorizon: a gap-free run of committed numbers leaves no lower number in flight).
      let next = Math.max(after, upTo) + 1;
      for (let i = 1; i < rows.length; i++) {
        const seq = Number(rows[i].seq);
        if (seq < next) continue;
        if (seq !== next) break;
        next++;
      }
      if (next - 1 > upTo) upTo = this.horizon.advance(next - 1);
      const changes: ChangeRecord[] = [];
      for (let i = 1; i < rows.length; i++) {
        const r = rows[i];
        const seq = Number(r.seq);
        if (seq > upTo) break;
        changes.push(toChangeRecord(r, contentTypes));
      }
      return { upTo, changes };
    });
  }

  get horizonPending(): boolean {
    return this.horizon.hasPending;
  }

  /**
   * Runs `handler` for every change after the consumer's persisted position, in order, exactly once,
   * now and as new changes commit, until the returned stop function is called.
   */
  consume(consumer: string, handler: ChangeHandler, options: ConsumeOptions = {}): { stop: () => Promise<void>; idle: () => Promise<void> } {
    const loop = new ConsumerLoop(this, this.db, consumer, handler, this.options.onError, options);
    this.consumers.add(loop);
    loop.start();
    return {
      stop: async () => {
        this.consumers.delete(loop);
        await loop.stop();
      },
      idle: () => loop.idle(),
    };
  }

  /** The persisted position of a consumer (0 if it never ran). */
  async position(consumer: string): Promise<number> {
    const { rows } = await this.db.query<{ position: number | string }>('SELECT position FROM feed_positions WHERE consumer = $1', [consumer]);
    return rows[0] ? Number(rows[0].position) : 0;
  }

  private wakeAll(read = true): void {
    for (const c of this.consumers) c.wake(read);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    this.consumers.clear();
    await this.unlisten?.();
  }
}

function toChangeRecord(r: ChangeRow, contentTypes: ReadonlySet<string> | undefined): ChangeRecord {
  return {
    seq: Number(r.seq),
    resourceType: r.resource_type,
    id: r.id,
    versionId: r.version_id,
    previousVersionId: r.previous_version_id,
    interaction: r.interaction,
    method: r.method,
    lastUpdated: new Date(r.last_updated),
    ...(r.events_numbered ? { eventsNumbered: true } : {}),
    ...(contentTypes?.has(r.resource_type) ? { content: r.content ?? null, previousContent: r.previous_content ?? null } : {}),
  };
}
