/**
 * Polls until `check` gives a value (work the app does after answering the request: a durable job,
 * the outbox), and returns it; fails naming what never happened. About 5 seconds at most.
 */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, options: { tries?: number; intervalMs?: number } = {}): Promise<T> {
  const { tries = 200, intervalMs = 25 } = options;
  for (let i = 0; i < tries; i++) {
    const value = await check();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`never happened: ${what}`);
}
