/**
 * The commit horizon: the highest change sequence number below which every change is final
 * (committed and visible, or rolled back for good).
 *
 * Why this is needed: sequence numbers are drawn inside write transactions, which commit in any
 * order. A reader that saw seq 11 committed and moved its position past it would skip seq 10 if
 * seq 10's transaction commits a moment later. Positions therefore only advance up to the horizon.
 *
 * How it is computed, lock-free and without slowing writers:
 *  1. read the sequence's last value L;
 *  2. then list the transactions currently writing change rows (those holding a write lock on
 *     resource_history, with their transaction ids).
 * Any transaction holding a seq ≤ L drew it before step 1, so at step 2 it has either finished or is
 * in that list. Once none of the listed transactions is still running, every seq ≤ L is final. With
 * no writer in flight (the common case, and always on PGlite) L is final at once. The two steps run in
 * the database (clarion_commit_horizon), in the same call that reads the changes after them
 * (clarion_changes_with_horizon, src/capture/change-feed.ts); this class keeps the readings' state.
 *
 * Under steady writes some writer is nearly always in flight, so L alone would become final only at
 * a later reading, after those writers finished. The read itself often proves more: when the changes
 * just above a final point are all visible with consecutive numbers, no transaction can still hold
 * any of those numbers (each is drawn once), so they are final whatever is in flight (`advance`).
 * A gap (a number in flight, or rolled back for good) stops that proof; the writers' check above
 * then settles it.
 */

/** One reading of the horizon's inputs (the first row of clarion_changes_with_horizon()). */
export interface HorizonReading {
  last_value: number | string | null;
  is_called: boolean | null;
  writers: string[] | null;
}

interface Pending {
  upTo: number;
  writers: Set<string>;
}

export class CommitHorizon {
  private safe = 0;
  private pending: Pending[] = [];

  /** `singleConnection`: PGlite — no transaction can be in flight while this one reads, so L is final. */
  constructor(private readonly singleConnection = false) {}

  /** The horizon as last computed. */
  get value(): number {
    return this.safe;
  }

  /** True while some allocated sequence numbers are not yet known to be final. */
  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Takes in one reading — the sequence value, then the transactions writing change rows (step 1, then
   * step 2) — and returns the horizon. Readings must be applied in the order they were taken.
   */
  apply(row: HorizonReading | undefined): number {
    const last = row && row.is_called ? Number(row.last_value) : 0;
    // On a single connection no other transaction can be in flight while this one reads.
    const running = new Set(this.singleConnection ? [] : (row?.writers ?? []));

    // Earlier candidates become final once none of their writers is still running.
    const still: Pending[] = [];
    for (const p of this.pending) {
      let done = true;
      for (const x of p.writers) {
        if (running.has(x)) {
          done = false;
          break;
        }
      }
      if (done) this.safe = Math.max(this.safe, p.upTo);
      else still.push(p);
    }
    this.pending = still.filter((p) => p.upTo > this.safe);

    if (last > this.safe) {
      if (running.size === 0) {
        this.safe = last;
        this.pending = [];
      } else {
        this.pending.push({ upTo: last, writers: running });
      }
    }
    return this.safe;
  }

  /** Records that every sequence number up to `upTo` is final (proved by the caller); returns the horizon. */
  advance(upTo: number): number {
    if (upTo <= this.safe) return this.safe;
    this.safe = upTo;
    this.pending = this.pending.filter((p) => p.upTo > upTo);
    return this.safe;
  }
}
