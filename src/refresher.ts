/**
 * A background task run every `intervalMs` on an unref'd timer (it never keeps the process alive),
 * one pass at a time: the next pass is scheduled only when the previous one has finished, so a slow
 * store never piles passes up. Used to keep caches current off the turn path (src/bot/directory.ts,
 * src/policies/library.ts).
 */
export class Refresher {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(private readonly pass: () => Promise<void>, readonly intervalMs: number) {
    if (!(intervalMs > 0)) throw new RangeError(`refresh interval must be positive, not ${intervalMs}`);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.pass()
        .catch(() => undefined) // a pass reports its own failures; the next one tries again
        .finally(() => {
          this.#running = undefined;
          this.#schedule();
        });
    }, this.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a pass in progress, so the store can be closed after it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
