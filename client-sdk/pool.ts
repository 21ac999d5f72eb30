import type { AdaptiveConcurrency } from './concurrency.ts';
import { AbortError, PAUSED } from './errors.ts';

/** A task's answer: done, or "put me back and retry after this delay". */
export type PoolOutcome = undefined | { retryInMs: number };

export interface WorkPoolOptions<T> {
  /** The level (`current`), the `Retry-After` gate (`blockedUntil`) and the throughput samples. */
  concurrency: AdaptiveConcurrency;
  /** Runs one item. Throwing fails the whole pool (after retries, which `run` decides). */
  run(item: T, signal: AbortSignal): Promise<PoolOutcome>;
  /** An item may start only while this holds, e.g. the download's reorder window. @default always */
  canStart?(item: T): boolean;
  /** Earlier items first (chunk order). */
  compare(a: T, b: T): number;
  now?: () => number;
}

interface Entry<T> {
  item: T;
  notBefore: number;
}

/**
 * A bounded pool whose size is whatever the adaptive controller says now. Items waiting for a
 * retry do not hold a slot: they go back to the queue with a `notBefore`. `pause()` aborts the
 * running items with the `PAUSED` marker and puts them back without blame; `resume()` restarts.
 */
export class WorkPool<T> {
  readonly #o: WorkPoolOptions<T>;
  readonly #now: () => number;
  #queue: Entry<T>[] = [];
  readonly #running = new Map<T, AbortController>();
  #paused = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #failed: unknown;

  constructor(options: WorkPoolOptions<T>) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  get running(): number {
    return this.#running.size;
  }
  get queued(): number {
    return this.#queue.length;
  }
  get paused(): boolean {
    return this.#paused;
  }

  add(item: T, delayMs = 0): void {
    this.#queue.push({ item, notBefore: this.#now() + delayMs });
    this.#pump();
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    for (const c of this.#running.values()) c.abort(PAUSED);
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#pump();
  }

  /** Runs until every item is done; rejects with the first fatal error (the others are aborted). */
  run(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => this.#fail(new AbortError(signal?.reason));
      if (signal?.aborted) return reject(new AbortError(signal.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        signal?.removeEventListener('abort', onAbort);
        clearTimeout(this.#timer);
        clearInterval(this.#ticker);
      };
      this.#settle = {
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (e) => {
          cleanup();
          reject(e);
        },
      };
      const c = this.#o.concurrency;
      this.#ticker = setInterval(
        () => {
          const before = c.current;
          c.tick(this.#running.size + this.#readyCount() >= before);
          if (c.current > before) this.#pump();
        },
        Math.max(50, c.options.sampleMs / 4),
      );
      this.#pump();
    });
  }

  #readyCount(): number {
    const now = this.#now();
    return this.#queue.filter((e) => e.notBefore <= now).length;
  }

  #fail(err: unknown): void {
    if (this.#failed !== undefined) return;
    this.#failed = err;
    for (const c of this.#running.values()) c.abort(err);
    this.#queue = [];
    this.#settle?.reject(err);
  }

  #pump(): void {
    if (!this.#settle || this.#failed !== undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#queue.length === 0 && this.#running.size === 0) {
      this.#settle.resolve();
      return;
    }
    if (this.#paused) return;
    const c = this.#o.concurrency;
    const now = this.#now();
    let wakeAt = c.blockedUntil > now ? c.blockedUntil : Number.POSITIVE_INFINITY;
    if (wakeAt === Number.POSITIVE_INFINITY) {
      this.#queue.sort((a, b) => this.#o.compare(a.item, b.item));
      while (this.#running.size < c.current) {
        const i = this.#queue.findIndex((e) => e.notBefore <= now && (this.#o.canStart?.(e.item) ?? true));
        if (i < 0) break;
        const [entry] = this.#queue.splice(i, 1);
        this.#start(entry!.item);
      }
      for (const e of this.#queue) if (e.notBefore > now) wakeAt = Math.min(wakeAt, e.notBefore);
    }
    if (wakeAt !== Number.POSITIVE_INFINITY) this.#timer = setTimeout(() => this.#pump(), Math.max(1, wakeAt - now));
  }

  #start(item: T): void {
    const ctl = new AbortController();
    this.#running.set(item, ctl);
    this.#o.run(item, ctl.signal).then(
      (outcome) => {
        this.#running.delete(item);
        if (outcome) this.#queue.push({ item, notBefore: this.#now() + outcome.retryInMs });
        this.#pump();
      },
      (err: unknown) => {
        this.#running.delete(item);
        if (ctl.signal.reason === PAUSED) {
          this.#queue.push({ item, notBefore: 0 });
          this.#pump();
        } else this.#fail(err);
      },
    );
  }
}
