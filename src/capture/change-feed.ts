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
 */
import type { Db, Queryable } from '../store/db.js';
import { CommitHorizon } from './commit-horizon.js';
import { WakeableSleep } from './wakeable-sleep.js';

export const CHANGES_CHANNEL = 'clarion_changes';

export interface ChangeRecord {
  seq: number;
  resourceType: string;
  id: string;
  versionId: number;
  previousVersionId: number | null;
  interaction: 'create' | 'update' | 'delete';
  method: string;
  lastUpdated: Date;
}

export interface ChangeFeedOptions {
  /** Safety-net poll interval (ms); default 250. */
  pollIntervalMs?: number;
  /** Records per handler call; default 500. */
  batchSize?: number;
  /** Errors thrown by handlers or the database (the consumer retries after a pause). */
  onError?: (err: unknown, consumer: string) => void;
}

export type ChangeHandler = (changes: ChangeRecord[], tx: Queryable) => Promise<void>;

export interface ConsumeOptions {
  /** Called after a batch's transaction committed (e.g. to wake whoever acts on its effects). */
  afterCommit?: (changes: ChangeRecord[]) => void;
  /**
   * True when the handler would do nothing with `changes` (read after `position`, outside any
   * transaction). The position then advances with one optimistic update instead of a locked
   * transaction; if another process moved it meanwhile, the batch goes the locked way after all.
   */
  skippable?: (changes: ChangeRecord[], position: number) => Promise<boolean>;
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
}

const RETRY_AFTER_ERROR_MS = 1000;
/** While writers are in flight, re-check the horizon this soon rather than waiting for the poll. */
const PENDING_RECHECK_MS = 2;

export class ChangeFeed {
  private readonly horizon: CommitHorizon;
  private readonly consumers = new Set<ConsumerLoop>();
  private unlisten?: () => Promise<void>;
  private notifyInFlight = false;
  private notifyAgain = false;
  private closed = false;
  private refreshing?: Promise<number>;
  readonly pollIntervalMs: number;
  readonly batchSize: number;

  constructor(
    private readonly db: Db,
    private readonly options: ChangeFeedOptions = {},
  ) {
    this.horizon = new CommitHorizon(db, db.kind === 'pglite');
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.batchSize = options.batchSize ?? 500;
  }

  /** Starts listening for other processes' notifications. */
  async start(): Promise<void> {
    this.unlisten = await this.db.listen(CHANGES_CHANNEL, () => this.wakeAll());
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
        .notify(CHANGES_CHANNEL)
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

  /** The commit horizon, refreshed (concurrent callers share one refresh). */
  async refreshHorizon(): Promise<number> {
    if (!this.refreshing) {
      this.refreshing = this.horizon.refresh().finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  get horizonPending(): boolean {
    return this.horizon.hasPending;
  }

  /** Reads up to `limit` final change records after `after` (no position is kept). */
  async read(after: number, limit = this.batchSize, q: Queryable = this.db): Promise<ChangeRecord[]> {
    const upTo = await this.refreshHorizon();
    return readRange(q, after, upTo, limit);
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

async function readRange(q: Queryable, after: number, upTo: number, limit: number): Promise<ChangeRecord[]> {
  if (upTo <= after) return [];
  const { rows } = await q.query<ChangeRow>(
    `SELECT seq, resource_type, id, version_id, previous_version_id, interaction, method, last_updated
       FROM resource_history WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
    [after, upTo, limit],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    resourceType: r.resource_type,
    id: r.id,
    versionId: r.version_id,
    previousVersionId: r.previous_version_id,
    interaction: r.interaction,
    method: r.method,
    lastUpdated: new Date(r.last_updated),
  }));
}

class ConsumerLoop {
  private running = false;
  private stopped = false;
  private wakeRequested = true;
  private readonly sleeper = new WakeableSleep();
  private loopPromise?: Promise<void>;
  private idleWaiters: (() => void)[] = [];
  private caughtUp = false;
  /** The position as last seen; no transaction is opened while the horizon has not passed it. */
  private knownPosition = -1;

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

  /** Processes one batch; returns how many records it handled. */
  private async step(): Promise<number> {
    const upTo = await this.feed.refreshHorizon();
    if (upTo <= this.knownPosition) return 0;
    if (this.options.skippable && this.knownPosition >= 0) {
      const skipped = await this.trySkip(this.knownPosition, upTo);
      if (skipped > 0) return skipped;
    }
    let handled: ChangeRecord[] = [];
    const n = await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ position: number | string }>(
        'SELECT position FROM feed_positions WHERE consumer = $1 FOR UPDATE SKIP LOCKED',
        [this.consumer],
      );
      if (!rows[0]) return 0; // another process holds this consumer's batch right now
      const position = Number(rows[0].position);
      const changes = await readRange(tx, position, upTo, this.feed.batchSize);
      if (changes.length === 0) {
        // Nothing committed in (position, upTo]: rolled-back sequence numbers only.
        this.knownPosition = upTo;
        return 0;
      }
      await this.handler(changes, tx);
      await tx.query('UPDATE feed_positions SET position = $2, updated_at = now() WHERE consumer = $1', [
        this.consumer,
        changes[changes.length - 1].seq,
      ]);
      handled = changes;
      return changes.length;
    });
    if (handled.length > 0) this.knownPosition = handled[handled.length - 1].seq;
    if (handled.length > 0 && this.options.afterCommit) {
      try {
        this.options.afterCommit(handled);
      } catch (err) {
        this.onError?.(err, this.consumer);
      }
    }
    return n;
  }

  /** The cheap path for batches the handler would ignore; returns how many changes it skipped (0 = not taken). */
  private async trySkip(position: number, upTo: number): Promise<number> {
    const changes = await readRange(this.db, position, upTo, this.feed.batchSize);
    if (changes.length === 0 || !(await this.options.skippable!(changes, position))) return 0;
    const last = changes[changes.length - 1].seq;
    const res = await this.db.query('UPDATE feed_positions SET position = $3, updated_at = now() WHERE consumer = $1 AND position = $2', [this.consumer, position, last]);
    if (res.rowCount !== 1) {
      this.knownPosition = -1; // another process moved it: take the locked way, which reads the real position
      return 0;
    }
    this.knownPosition = last;
    return changes.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.sleeper.wake();
    await this.loopPromise;
    for (const w of this.idleWaiters) w();
    this.idleWaiters = [];
  }
}
