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
 * process's write, a rolled-back number, a change not offered) it reads as usual.
 */
import { randomUUID } from 'node:crypto';
import type { Db, Queryable } from '../store/db.js';
import type { CommittedVersion } from '../store/resource-store.js';
import { CommitHorizon, type HorizonReading } from './commit-horizon.js';
import { WakeableSleep } from './wakeable-sleep.js';

export const CHANGES_CHANNEL = 'clarion_changes';

/**
 * A change record as a consumer gets it. The version's JSON (null for a deletion) and the previous
 * version's are there when the consumer asked for the content of this resource type
 * (ConsumeOptions.contentTypes), absent otherwise.
 */
export type ChangeRecord = Omit<CommittedVersion, 'content' | 'previousContent'> & Partial<Pick<CommittedVersion, 'content' | 'previousContent'>>;

export interface ChangeFeedOptions {
  /** Safety-net poll interval (ms); default 250. */
  pollIntervalMs?: number;
  /** Records per handler call; default 500. */
  batchSize?: number;
  /** Errors thrown by handlers or the database (the consumer retries after a pause). */
  onError?: (err: unknown, consumer: string) => void;
}

/** `after`: the position the batch was read after (no change exists between it and `changes[0]`). */
export type ChangeHandler = (changes: ChangeRecord[], tx: Queryable, batch: { after: number }) => Promise<void>;

export interface ConsumeOptions {
  /** Called after a batch's transaction committed (e.g. to wake whoever acts on its effects). */
  afterCommit?: (changes: ChangeRecord[]) => void;
  /**
   * True when the handler would do nothing with `changes` (read after `position`, outside any
   * transaction). The position then advances with one optimistic update instead of a locked
   * transaction; if another process moved it meanwhile, the batch goes the locked way after all.
   */
  skippable?: (changes: ChangeRecord[], position: number) => Promise<boolean>;
  /**
   * Resource types whose current and previous content the handler needs: read with the change records in
   * the same query (saves the handler a round trip per batch). Asked before each read.
   */
  contentTypes?: () => ReadonlySet<string>;
  /**
   * Handles a batch (read after `advance.from`, outside any transaction) in one statement that also
   * advances the position (positionAdvance): no BEGIN, lock and COMMIT round trips. Resolves true if it
   * did, false if the position had moved (another process handled the batch: nothing was written), and
   * undefined if this batch needs a transaction (the handler then runs as usual).
   */
  oneStatement?: (changes: ChangeRecord[], advance: PositionAdvance) => Promise<boolean | undefined>;
}

/** A consumer's position moving from `from` to `to` (see positionAdvance). */
export interface PositionAdvance {
  consumer: string;
  from: number;
  to: number;
}

/**
 * SQL for a data-modifying WITH clause that advances the position if it is still `from`, returning one
 * row if it did; its parameters are `$first`, `$first+1` and `$first+2` (params). A statement that
 * gates its writes on a row from it writes all or nothing with the advance. If another process holds
 * the position row in a batch, the statement waits for it and then finds the position moved.
 */
export function positionAdvance(advance: PositionAdvance, first: number, options: { waitForFlush?: boolean } = {}): { sql: string; params: unknown[] } {
  // Without the flush wait for this statement's implicit transaction only (set_config local).
  const noWait = options.waitForFlush === false ? ` AND set_config('synchronous_commit', 'off', true) IS NOT NULL` : '';
  return {
    sql: `UPDATE feed_positions SET position = $${first + 2}, updated_at = now() WHERE consumer = $${first} AND position = $${first + 1}${noWait} RETURNING 1`,
    params: [advance.consumer, advance.from, advance.to],
  };
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

const RETRY_AFTER_ERROR_MS = 1000;
/** Offered changes a consumer keeps at most (in batches of batchSize); beyond, it reads them instead. */
const MAX_OFFERED_BATCHES = 4;
/** While writers are in flight, re-check the horizon this soon rather than waiting for the poll. */
const PENDING_RECHECK_MS = 2;

export class ChangeFeed {
  private readonly horizon: CommitHorizon;
  private readonly consumers = new Set<ConsumerLoop>();
  private unlisten?: () => Promise<void>;
  private notifyInFlight = false;
  private notifyAgain = false;
  private closed = false;
  /** Horizon readings are applied in the order they were taken: one reading at a time. */
  private readings: Promise<unknown> = Promise.resolve();
  /** Sent as the NOTIFY payload, so this feed ignores its own notifications (each would cost a horizon read). */
  private readonly token = randomUUID();
  readonly pollIntervalMs: number;
  readonly batchSize: number;

  constructor(
    private readonly db: Db,
    private readonly options: ChangeFeedOptions = {},
  ) {
    this.horizon = new CommitHorizon(db.kind === 'pglite');
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.batchSize = options.batchSize ?? 500;
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
    for (const c of this.consumers) c.offer(change);
  }

  /** A consumer proved every number up to `upTo` final (a gap-free run of committed changes above a final point). */
  provedFinal(upTo: number): void {
    this.horizon.advance(upTo);
  }

  /** Call after a write committed: wakes local consumers now and other processes via NOTIFY. */
  changed(): void {
    if (this.closed) return;
    this.wakeAll();
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

  private wakeAll(): void {
    for (const c of this.consumers) c.wake();
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

class ConsumerLoop {
  private running = false;
  private stopped = false;
  private wakeRequested = true;
  private readonly sleeper = new WakeableSleep();
  private loopPromise?: Promise<void>;
  private idleWaiters: (() => void)[] = [];
  private caughtUp = false;
  /** The persisted position as last seen (-1: unknown, read it under lock). */
  private knownPosition = -1;
  /** Read up to here and found nothing committed (between knownPosition and this, no change exists). */
  private scannedThrough = -1;
  /** Changes committed in this process and not yet passed, by sequence number (ChangeFeed.offer). */
  private readonly offered = new Map<number, ChangeRecord>();

  constructor(
    private readonly feed: ChangeFeed,
    private readonly db: Db,
    private readonly consumer: string,
    private readonly handler: ChangeHandler,
    private readonly onError?: (err: unknown, consumer: string) => void,
    private readonly options: ConsumeOptions = {},
  ) {}

  start(): void {
    this.loopPromise = this.run();
  }

  wake(): void {
    this.wakeRequested = true;
    this.caughtUp = false;
    this.sleeper.wake();
  }

  offer(change: ChangeRecord): void {
    if (change.seq <= Math.max(this.knownPosition, this.scannedThrough) || this.offered.size >= MAX_OFFERED_BATCHES * this.feed.batchSize) return;
    this.offered.set(change.seq, change);
  }

  /**
   * The offered changes that continue `after` with consecutive numbers (up to a batch), taken out;
   * undefined if the next number was not offered. Offered changes at or below `after` are dropped.
   */
  private takeOffered(after: number): ChangeRecord[] | undefined {
    if (this.offered.size === 0) return undefined;
    for (const seq of this.offered.keys()) if (seq <= after) this.offered.delete(seq);
    const run: ChangeRecord[] = [];
    let types: ReadonlySet<string> | undefined;
    for (let seq = after + 1; run.length < this.feed.batchSize; seq++) {
      const change = this.offered.get(seq);
      if (!change) break;
      this.offered.delete(seq);
      types ??= this.options.contentTypes?.() ?? new Set();
      if (types.has(change.resourceType)) {
        run.push(change);
      } else {
        // As a read would have it: content only for the types the consumer asks content of.
        const { content: _content, previousContent: _previous, ...record } = change;
        run.push(record);
      }
    }
    return run.length > 0 ? run : undefined;
  }

  /** Resolves once the consumer has processed everything committed before the call. */
  async idle(): Promise<void> {
    this.wake();
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private sleep(ms: number): Promise<void> {
    return this.sleeper.sleep(ms);
  }

  private async run(): Promise<void> {
    this.running = true;
    await this.db.query('INSERT INTO feed_positions (consumer, position) VALUES ($1, 0) ON CONFLICT DO NOTHING', [this.consumer]).catch(
      (err: unknown) => this.onError?.(err, this.consumer),
    );
    while (!this.stopped) {
      let processed = 0;
      let failed = false;
      try {
        this.wakeRequested = false;
        processed = await this.step();
      } catch (err) {
        failed = true;
        this.onError?.(err, this.consumer);
      }
      if (this.stopped) break;
      if (failed) {
        await this.sleep(RETRY_AFTER_ERROR_MS);
        continue;
      }
      // A full batch may have more behind it; after a partial one, only a wake-up (a commit here, a
      // NOTIFY from elsewhere) or the safety-net poll means there is more to read.
      if (processed >= this.feed.batchSize || this.wakeRequested) continue;
      if (this.feed.horizonPending) {
        await this.sleep(PENDING_RECHECK_MS);
        continue;
      }
      this.caughtUp = true;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
      if (this.caughtUp) await this.sleep(this.feed.pollIntervalMs);
    }
    this.running = false;
  }

  /**
   * Processes one batch; returns how many records it handled.
   *
   * The usual path knows the persisted position from its last batch: it refreshes the horizon and reads
   * the next changes in one call outside any transaction, then locks and advances the position in one
   * statement that only succeeds if the position is still the one it read from (another process may
   * have moved it), and runs the handler in that same transaction. Batches the handler would ignore
   * advance the position without a transaction, and the handler may take a batch in one statement with
   * the advance (oneStatement). Without a known position (start, or after losing a race) the batch
   * reads the position under lock.
   */
  private async step(): Promise<number> {
    if (this.knownPosition < 0) return this.lockedStep();
    const position = this.knownPosition;
    const from = Math.max(position, this.scannedThrough);
    const local = this.takeOffered(from);
    if (local) this.feed.provedFinal(local[local.length - 1].seq);
    const { upTo, changes } = local
      ? { upTo: local[local.length - 1].seq, changes: local }
      : await this.feed.readWithHorizon(from, this.feed.batchSize, this.options.contentTypes?.());
    if (upTo <= from) return 0;
    if (changes.length === 0) {
      // Nothing committed in the range (rolled-back sequence numbers only): no need to read it again.
      this.scannedThrough = upTo;
      return 0;
    }
    const last = changes[changes.length - 1].seq;
    const advance: PositionAdvance = { consumer: this.consumer, from: position, to: last };
    if (this.options.skippable && (await this.options.skippable(changes, position))) {
      // The handler does nothing with these changes: if a crash loses the advance, they are read and skipped again.
      const { sql, params } = positionAdvance(advance, 1, { waitForFlush: false });
      if ((await this.db.query(sql, params)).rowCount !== 1) {
        this.knownPosition = -1; // another process moved it: take the locked way, which reads the real position
        return 0;
      }
      this.knownPosition = last;
      return changes.length;
    }
    // The handler's own statement when it can take the batch in one (undefined: it needs a transaction).
    const advanced = (await this.options.oneStatement?.(changes, advance)) ?? (await this.advanceAndHandle(changes, advance));
    if (!advanced) {
      this.knownPosition = -1;
      return 0;
    }
    this.knownPosition = last;
    this.committed(changes);
    return changes.length;
  }

  /** Advances the position (if still `from`) and runs the handler, in one transaction; false if it had moved. */
  private advanceAndHandle(changes: ChangeRecord[], advance: PositionAdvance): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const res = await tx.query(
        `UPDATE feed_positions SET position = $3, updated_at = now()
          WHERE consumer = (SELECT consumer FROM feed_positions WHERE consumer = $1 AND position = $2 FOR UPDATE SKIP LOCKED)`,
        [advance.consumer, advance.from, advance.to],
      );
      if (res.rowCount !== 1) return false;
      await this.handler(changes, tx, { after: advance.from });
      return true;
    });
  }

  private async lockedStep(): Promise<number> {
    let handled: ChangeRecord[] = [];
    await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ position: number | string }>(
        'SELECT position FROM feed_positions WHERE consumer = $1 FOR UPDATE SKIP LOCKED',
        [this.consumer],
      );
      if (!rows[0]) return; // another process holds this consumer's batch right now
      const position = Number(rows[0].position);
      this.knownPosition = position;
      const { upTo, changes } = await this.feed.readWithHorizon(position, this.feed.batchSize, this.options.contentTypes?.(), tx);
      if (changes.length === 0) {
        this.scannedThrough = Math.max(this.scannedThrough, upTo);
        return;
      }
      await this.handler(changes, tx, { after: position });
      await tx.query('UPDATE feed_positions SET position = $2, updated_at = now() WHERE consumer = $1', [this.consumer, changes[changes.length - 1].seq]);
      handled = changes;
    });
    if (handled.length === 0) return 0;
    this.knownPosition = handled[handled.length - 1].seq;
    this.committed(handled);
    return handled.length;
  }

  private committed(changes: ChangeRecord[]): void {
    if (!this.options.afterCommit) return;
    try {
      this.options.afterCommit(changes);
    } catch (err) {
      this.onError?.(err, this.consumer);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sleeper.wake();
    await this.loopPromise;
    for (const w of this.idleWaiters) w();
    this.idleWaiters = [];
  }
}
