/**
 * A sleep that a wake-up ends early: the wait of a polling loop (change-feed consumers, the delivery
 * worker) between a safety-net poll and a "there is new work" signal.
 */
export class WakeableSleep {
  private timer?: NodeJS.Timeout;
  private resolve?: () => void;

  /** `unref`: the timer does not keep the process alive by itself. */
  constructor(private readonly unref = false) {}

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.resolve = resolve;
      this.timer = setTimeout(() => this.end(), ms);
      if (this.unref) this.timer.unref();
    });
  }

  /** Ends the current sleep now, if there is one. */
  wake(): void {
    this.end();
  }

  private end(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const resolve = this.resolve;
    this.resolve = undefined;
    resolve?.();
  }
}
