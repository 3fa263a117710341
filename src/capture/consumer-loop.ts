/**
 * One named consumer of the change feed: a loop that takes batches of changes (offered by this process's
 * commits, or read up to the commit horizon), runs the handler on each in the transaction (or the one
 * statement) that advances the consumer's persisted position, and sleeps until woken or polled.
 */
import type { Db, Queryable } from '../store/db.js';
import type { CommittedVersion } from '../store/resource-store.js';
import { WakeableSleep } from './wakeable-sleep.js';

/**
 * A change record as a consumer gets it. The version's JSON (null for a deletion) and the previous
 * version's are there when the consumer asked for the content of this resource type
 * (ConsumeOptions.contentTypes), absent otherwise.
 */
export type ChangeRecord = Omit<CommittedVersion, 'content' | 'previousContent'> & Partial<Pick<CommittedVersion, 'content' | 'previousContent'>>;

/** `after`: the position the batch was read after (no change between it and `changes[0]` needs the handler). */
export type ChangeHandler = (changes: ChangeRecord[], tx: Queryable, batch: { after: number }) => Promise<void>;

export interface ConsumeOptions {
  /** Called after a batch's transaction committed (e.g. to wake whoever acts on its effects). */
  afterCommit?: (changes: ChangeRecord[]) => void;
  /**
   * True when the handler would do nothing with `changes` (read after `position`, outside any
   * transaction). The position then advances in memory, and is persisted by the next batch handled or
   * now and then (ChangeFeedOptions.skippedPersistMs) with one optimistic update; if another process
   * moved it meanwhile, the next batch goes the locked way.
   */
  skippable?: (changes: ChangeRecord[], position: number) => Promise<boolean>;
  /**
   * Resource types whose current and previous content the handler needs: read with the change records in
   * the same query (saves the handler a round trip per batch). Asked before each read.
   */
  contentTypes?: () => ReadonlySet<string>;
  /**
   * Handles a batch (read after `advance.after`, outside any transaction) in one statement that also
   * advances the position (positionAdvance): no BEGIN, lock and COMMIT round trips. Resolves true if it
   * did, false if the position had moved (another process handled the batch: nothing was written), and
   * undefined if this batch needs a transaction (the handler then runs as usual).
   */
  oneStatement?: (changes: ChangeRecord[], advance: PositionAdvance) => Promise<boolean | undefined>;
}

/** A consumer's position moving from `from` to `to` (see positionAdvance). */
export interface PositionAdvance {
  consumer: string;
  /** The persisted position the advance starts from (it only succeeds if the position is still this). */
  from: number;
  to: number;
  /**
   * Where the batch was read after: `from`, or later when the batches between were skipped and their
   * advance not persisted yet (no change between `from` and `after` needs handling).
   */
  after: number;
}

/**
 * SQL for a data-modifying WITH clause that advances the position if it is still `from`, returning one
 * row if it did; its parameters are `$first`, `$first+1` and `$first+2` (params). A statement that
 * gates its writes on a row from it writes all or nothing with the advance. If another process holds
 * the position row in a batch, the statement waits for it and then finds the position moved.
 */
export function positionAdvance(advance: Omit<PositionAdvance, 'after'>, first: number, options: { waitForFlush?: boolean } = {}): { sql: string; params: unknown[] } {
  // Without the flush wait for this statement's implicit transaction only (set_config local).
  const noWait = options.waitForFlush === false ? ` AND set_config('synchronous_commit', 'off', true) IS NOT NULL` : '';
  return {
    sql: `UPDATE feed_positions SET position = $${first + 2}, updated_at = now() WHERE consumer = $${first} AND position = $${first + 1}${noWait} RETURNING 1`,
    params: [advance.consumer, advance.from, advance.to],
  };
}

/** What a consumer loop needs of its feed (the ChangeFeed). */
export interface ConsumerFeed {
  readonly pollIntervalMs: number;
  readonly batchSize: number;
  readonly skippedPersistMs: number;
  /** Writers are in flight below the horizon: re-check soon. */
  readonly horizonPending: boolean;
  readWithHorizon(after: number, limit: number, contentTypes?: ReadonlySet<string>, q?: Queryable): Promise<{ upTo: number; changes: ChangeRecord[] }>;
  provedFinal(upTo: number): void;
}

const RETRY_AFTER_ERROR_MS = 1000;
/** Offered changes a consumer keeps at most (in batches of batchSize); beyond, it reads them instead. */
const MAX_OFFERED_BATCHES = 4;
/** While writers are in flight, re-check the horizon this soon rather than waiting for the poll. */
const PENDING_RECHECK_MS = 2;

export class ConsumerLoop {
  private running = false;
  private stopped = false;
  private wakeRequested = true;
  /**
   * A wake-up for changes that were not offered came in: the next batch reads even if offered changes
   * continue the position, or it could take them, find nothing more offered and sleep past the others.
   */
  private readRequested = true;
  private readonly sleeper = new WakeableSleep();
  private loopPromise?: Promise<void>;
  private idleWaiters: (() => void)[] = [];
  private caughtUp = false;
  /** The persisted position as last seen (-1: unknown, read it under lock). */
  private knownPosition = -1;
  /**
   * Read up to here and found nothing to handle: no change committed, or batches the handler skips
   * (between knownPosition and this, no change needs the handler). Persisted now and then (persistSkipped).
   */
  private scannedThrough = -1;
  /** When the position was last persisted (performance.now()), so skipped progress is persisted at most every skippedPersistMs. */
  private persistedAt = performance.now();
  /** Changes committed in this process and not yet passed, by sequence number (ChangeFeed.offer). */
  private readonly offered = new Map<number, ChangeRecord>();

  constructor(
    private readonly feed: ConsumerFeed,
    private readonly db: Db,
    private readonly consumer: string,
    private readonly handler: ChangeHandler,
    private readonly onError?: (err: unknown, consumer: string) => void,
    private readonly options: ConsumeOptions = {},
  ) {}

  start(): void {
    this.loopPromise = this.run();
  }

  /** `read`: the wake-up is for changes that were not offered (another process's, a transaction's), so the next batch reads. */
  wake(read = true): void {
    this.wakeRequested = true;
    if (read) this.readRequested = true;
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
      // Someone waits for idle (a test, a shutdown): they get the position persisted too.
      await this.persistSkipped(waiters.length > 0);
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
    const mustRead = this.readRequested;
    this.readRequested = false;
    if (this.knownPosition < 0) return this.lockedStep();
    const position = this.knownPosition;
    const from = Math.max(position, this.scannedThrough);
    const local = mustRead ? undefined : this.takeOffered(from);
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
    const advance: PositionAdvance = { consumer: this.consumer, from: position, to: last, after: from };
    if (this.options.skippable && (await this.options.skippable(changes, from))) {
      // The handler does nothing with these changes. Persisting that is one statement and one commit per
      // batch, as many as the writes' own when every batch is skipped: done now and then instead, and by
      // the next batch handled. A crash re-reads them and skips them again.
      this.scannedThrough = last;
      await this.persistSkipped();
      return changes.length;
    }
    // The handler's own statement when it can take the batch in one (undefined: it needs a transaction).
    const advanced = (await this.options.oneStatement?.(changes, advance)) ?? (await this.advanceAndHandle(changes, advance));
    if (!advanced) {
      this.knownPosition = -1;
      return 0;
    }
    this.knownPosition = last;
    this.persistedAt = performance.now();
    this.committed(changes);
    return changes.length;
  }

  /**
   * Persists the position reached by skipping (scannedThrough), if ahead of the persisted one and either
   * `now` or skippedPersistMs after the last time the position was persisted.
   */
  private async persistSkipped(now = false): Promise<void> {
    if (this.knownPosition < 0 || this.scannedThrough <= this.knownPosition) return;
    if (!now && performance.now() - this.persistedAt < this.feed.skippedPersistMs) return;
    const to = this.scannedThrough;
    const { sql, params } = positionAdvance({ consumer: this.consumer, from: this.knownPosition, to }, 1, { waitForFlush: false });
    try {
      // Another process moved it: take the locked way, which reads the real position.
      this.knownPosition = (await this.db.query(sql, params)).rowCount === 1 ? to : -1;
      this.persistedAt = performance.now();
    } catch (err) {
      this.onError?.(err, this.consumer);
    }
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
      await this.handler(changes, tx, { after: advance.after });
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
      // Changes up to scannedThrough need no handler, whoever's position this is.
      const after = Math.max(position, this.scannedThrough);
      const { upTo, changes } = await this.feed.readWithHorizon(after, this.feed.batchSize, this.options.contentTypes?.(), tx);
      if (changes.length === 0) {
        this.scannedThrough = Math.max(this.scannedThrough, upTo);
        return;
      }
      await this.handler(changes, tx, { after });
      await tx.query('UPDATE feed_positions SET position = $2, updated_at = now() WHERE consumer = $1', [this.consumer, changes[changes.length - 1].seq]);
      handled = changes;
    });
    if (handled.length === 0) return 0;
    this.knownPosition = handled[handled.length - 1].seq;
    this.persistedAt = performance.now();
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
    await this.persistSkipped(true); // a restart then need not re-read what this one skipped
    for (const w of this.idleWaiters) w();
    this.idleWaiters = [];
  }
}
