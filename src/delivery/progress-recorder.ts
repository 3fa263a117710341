/**
 * Records one subscription's delivery progress without holding up its deliveries: at most one update
 * is in flight, and whatever is delivered meanwhile goes into the next one, so under load many
 * notifications share one update (and the database sees a bounded update rate per subscription).
 * With `minIntervalMs`, updates also start at least that far apart (settle() does not wait for it):
 * a stream of small notifications otherwise pays one round trip per notification for its progress,
 * which on a busy machine costs about as much as the notification itself.
 * A crash loses at most the progress not yet recorded — those notifications are sent again, which
 * at-least-once delivery allows — never the order or the numbering.
 */
export interface Recorded {
  /** The subscription's event counter when the update ran (did more events arrive?). */
  eventsSinceStart: number;
  /** The lease expiry the update set (ms since epoch). */
  leaseUntil: number;
}

export class ProgressRecorder {
  private inFlight: Promise<void> | undefined;
  private recorded: number;
  private wanted: number;
  private lost = false;
  private failure: { error: unknown } | undefined;
  private lastStart = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** settle() calls waiting: while any does, spacing is ignored. */
  private settling = 0;

  /**
   * `write` records delivery through a number (and extends the lease); it resolves undefined when the
   * lease is no longer this worker's. `onRecorded` sees each successful update.
   */
  constructor(
    start: number,
    private readonly write: (through: number) => Promise<Recorded | undefined>,
    private readonly onRecorded: (r: Recorded) => void,
    private readonly spacing: { minIntervalMs: number; now?: () => number } = { minIntervalMs: 0 },
  ) {
    this.recorded = this.wanted = start;
  }

  /** Notifications were delivered through `through`: record it now, or with the next update. */
  delivered(through: number): void {
    this.wanted = Math.max(this.wanted, through);
    this.pump();
  }

  /** True once an update found the lease taken by another worker: stop sending. */
  get leaseLost(): boolean {
    return this.lost;
  }

  /** Waits until everything delivered so far is recorded; false if the lease was lost. Rethrows a database error. */
  async settle(): Promise<boolean> {
    this.settling++;
    try {
      this.pump(true);
      while (this.inFlight) await this.inFlight;
    } finally {
      this.settling--;
    }
    if (this.failure) throw this.failure.error;
    return !this.lost;
  }

  /** Monotonic time for the spacing (not the business clock: a frozen test clock must not hold updates back). */
  private now(): number {
    return this.spacing.now ? this.spacing.now() : performance.now();
  }

  private pump(immediately = false): void {
    if (this.inFlight || this.lost || this.failure || this.wanted <= this.recorded) return;
    const wait = this.lastStart + this.spacing.minIntervalMs - this.now();
    if (!immediately && wait > 0) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastStart = this.now();
    const through = this.wanted;
    this.inFlight = this.write(through).then(
      (r) => {
        this.inFlight = undefined;
        if (!r) {
          this.lost = true;
          return;
        }
        this.recorded = through;
        this.onRecorded(r);
        this.pump(this.settling > 0);
      },
      (error: unknown) => {
        this.inFlight = undefined;
        this.failure = { error };
      },
    );
  }
}
