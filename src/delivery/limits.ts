/**
 * Small timing tools for the outbox and the job runner: a rate limiter (GCRA, the token bucket
 * computed from one timestamp), exponential backoff with jitter, a semaphore and a sleep that a
 * stop or a wake-up can cut short.
 */

/**
 * Generic cell rate algorithm: `ratePerSecond` on average, up to `burst` at once. `reserve(n)`
 * books n requests and says how long to wait before sending them; bookings are never refused, so
 * callers queue up in the order they asked.
 */
export class RateLimiter {
  #tat = 0;
  #interval: number;
  #tolerance: number;
  constructor(ratePerSecond: number, private burst = 1) {
    this.#interval = 1000 / ratePerSecond;
    this.#tolerance = (Math.max(1, burst) - 1) * this.#interval;
  }

  setRate(ratePerSecond: number): void {
    this.#interval = 1000 / ratePerSecond;
    this.#tolerance = (Math.max(1, this.burst) - 1) * this.#interval;
  }

  /** How long `n` requests would have to wait if booked now (nothing is booked). */
  peek(n = 1, now = Date.now()): number {
    const start = Math.max(this.#tat, now);
    return Math.max(0, start + (n - 1) * this.#interval - this.#tolerance - now);
  }

  /** Books `n` requests; returns the milliseconds to wait before sending them (0: at once). */
  reserve(n = 1, now = Date.now()): number {
    const wait = this.peek(n, now);
    this.#tat = Math.max(this.#tat, now) + n * this.#interval;
    return wait;
  }

  /** True when no booking is outstanding (the limiter can be forgotten). */
  idle(now = Date.now()): boolean {
    return this.#tat <= now;
  }
}

/** One RateLimiter per key (a conversation), forgetting idle ones so the map stays small. */
export class KeyedRateLimiter {
  #limiters = new Map<string, RateLimiter>();
  constructor(private readonly ratePerSecond: number, private readonly burst: number, private readonly maxKeys = 50_000) {}

  peek(key: string, n = 1, now = Date.now()): number {
    return this.#limiters.get(key)?.peek(n, now) ?? new RateLimiter(this.ratePerSecond, this.burst).peek(n, now);
  }

  reserve(key: string, n = 1, now = Date.now()): number {
    let limiter = this.#limiters.get(key);
    if (!limiter) {
      if (this.#limiters.size >= this.maxKeys) this.#prune(now);
      limiter = new RateLimiter(this.ratePerSecond, this.burst);
      this.#limiters.set(key, limiter);
    }
    return limiter.reserve(n, now);
  }

  #prune(now: number): void {
    for (const [key, limiter] of this.#limiters) if (limiter.idle(now)) this.#limiters.delete(key);
  }
}

/**
 * Exponential backoff with jitter: attempt 1 waits about `baseMs`, each further attempt doubles,
 * capped at `maxMs`; the actual wait is drawn between half and all of that, so workers that failed
 * together do not come back together.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** A sleep that ends early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A sleep that `wake()` (or the signal) can end early; a wake while awake is remembered once. */
export class Waker {
  #wake?: () => void;
  #pending = false;
  constructor(private readonly signal?: AbortSignal) {}

  sleep(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    if (ms <= 0 || this.signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.signal?.removeEventListener('abort', done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.signal?.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  wake(): void {
    if (this.#wake) this.#wake();
    else this.#pending = true;
  }

  /** Whether a wake arrived since the last sleep (and clears it). */
  takeWake(): boolean {
    const pending = this.#pending;
    this.#pending = false;
    return pending;
  }
}

/** Counting semaphore: at most `size` holders at once, the rest wait in order. */
export class Semaphore {
  #free: number;
  #waiting: Array<() => void> = [];
  constructor(readonly size: number) {
    this.#free = size;
  }

  get inUse(): number {
    return this.size - this.#free;
  }

  acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

/** Runs `task` over `items` with at most `limit` at once; resolves when all are done. */
export async function forEachLimit<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await task(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
