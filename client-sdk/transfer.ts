import type { ConcurrencyChange, ConcurrencySnapshot } from './concurrency.ts';

/** A progress report, emitted at most every `progressIntervalMs` and once at the end. */
export interface Progress {
  phase: 'preparing' | 'hashing' | 'transferring' | 'completing' | 'verifying' | 'done';
  /** Bytes of the file in total. */
  bytesTotal: number;
  /** Bytes confirmed or on their way (drops back when a chunk fails and is retried). */
  bytesDone: number;
  chunksTotal: number;
  /** Chunks confirmed, including those skipped because an earlier run had sent them. */
  chunksDone: number;
  /** Chunks an earlier run had already transferred (resume). */
  chunksSkipped: number;
  /** Bytes per second over the last few seconds. */
  rate: number;
  /** Seconds left at `rate`, or undefined while unknown. */
  etaSeconds: number | undefined;
  /** Retries so far (all chunks and calls). */
  retries: number;
  /** The adaptive pool: current level and limits. */
  concurrency: ConcurrencySnapshot;
  elapsedMs: number;
  paused: boolean;
}

export interface RetryEvent {
  chunkIndex?: number;
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface TransferEvents {
  progress: Progress;
  retry: RetryEvent;
  concurrency: ConcurrencyChange;
  /** An upload has its server-side id: a new upload was created, or an interrupted one is resumed. */
  started: { uploadId: string; resumed: boolean };
  /** `auto` transport switched from direct to relay. */
  transport: { from: 'direct' | 'relay'; to: 'direct' | 'relay'; reason: string };
}

type Listener<K extends keyof TransferEvents> = (event: TransferEvents[K]) => void;

/**
 * What `upload()` and `download()` return: a promise of the result that can also be paused,
 * resumed and aborted, and that emits progress. `await client.upload(...)` just works.
 */
export class Transfer<T> implements PromiseLike<T> {
  readonly #listeners = new Map<keyof TransferEvents, Set<(e: never) => void>>();
  readonly #abort = new AbortController();
  #paused = false;
  #controls: { pause(): void; resume(): void } | undefined;
  #progress: () => Progress;
  #uploadId: string | undefined;
  readonly #createdAt = Date.now();
  readonly result: Promise<T>;

  /** @internal built by the client */
  constructor(start: (t: Transfer<T>, signal: AbortSignal) => Promise<T>, signal?: AbortSignal) {
    // Until the transfer has sized its work: nothing done, nothing known.
    this.#progress = () => ({
      phase: 'preparing',
      bytesTotal: 0,
      bytesDone: 0,
      chunksTotal: 0,
      chunksDone: 0,
      chunksSkipped: 0,
      rate: 0,
      etaSeconds: undefined,
      retries: 0,
      concurrency: { current: 0, min: 0, max: 0, adaptive: false, blockedUntil: 0, changes: [] },
      elapsedMs: Date.now() - this.#createdAt,
      paused: this.#paused,
    });
    if (signal) {
      if (signal.aborted) this.#abort.abort(signal.reason);
      else signal.addEventListener('abort', () => this.#abort.abort(signal.reason), { once: true });
    }
    this.result = Promise.resolve().then(() => start(this, this.#abort.signal));
    // The caller may only listen to events; an unobserved rejection must not crash the process twice.
    this.result.catch(() => {});
  }

  // biome-ignore lint/suspicious/noThenProperty: a Transfer is deliberately awaitable
  then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.result.then(onFulfilled, onRejected);
  }
  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<T | B> {
    return this.result.catch(onRejected);
  }
  finally(fn?: (() => void) | null): Promise<T> {
    return this.result.finally(fn);
  }

  on<K extends keyof TransferEvents>(event: K, fn: Listener<K>): () => void {
    const set = this.#listeners.get(event) ?? new Set();
    this.#listeners.set(event, set);
    set.add(fn as (e: never) => void);
    return () => set.delete(fn as (e: never) => void);
  }

  /** Stops starting chunks and interrupts those in flight (they are sent again on `resume()`). */
  pause(): void {
    this.#paused = true;
    this.#controls?.pause();
  }
  resume(): void {
    this.#paused = false;
    this.#controls?.resume();
  }
  /** Stops for good: the promise rejects with `AbortError`. The server-side upload is kept, so a later `upload()` resumes it. */
  abort(reason?: unknown): void {
    this.#abort.abort(reason);
  }
  get paused(): boolean {
    return this.#paused;
  }
  /** The latest progress (phase `preparing`, all zeros, until the transfer has started). */
  get progress(): Progress {
    return this.#progress();
  }
  /**
   * An upload's id once the server has it (also announced by the `started` event), so the
   * caller can show, share or abort it before the upload finishes; `undefined` until then and for downloads.
   */
  get uploadId(): string | undefined {
    return this.#uploadId;
  }

  /** @internal */
  started(uploadId: string, resumed: boolean): void {
    this.#uploadId = uploadId;
    this.emit('started', { uploadId, resumed });
  }

  /** @internal */
  emit<K extends keyof TransferEvents>(event: K, value: TransferEvents[K]): void {
    for (const fn of this.#listeners.get(event) ?? []) {
      try {
        (fn as Listener<K>)(value);
      } catch {
        // a listener's bug must not break the transfer
      }
    }
  }
  /** @internal */
  attach(controls: { pause(): void; resume(): void }, progress: () => Progress): void {
    this.#controls = controls;
    this.#progress = progress;
    if (this.#paused) controls.pause();
  }
}

/** Bytes per second over a sliding window, from cumulative byte counts. */
export class RateMeter {
  readonly #samples: Array<{ at: number; bytes: number }> = [];
  #total = 0;
  constructor(
    readonly windowMs = 5000,
    readonly now: () => number = Date.now,
  ) {}
  add(bytes: number): void {
    if (bytes <= 0) return;
    this.#total += bytes;
    const at = this.now();
    this.#samples.push({ at, bytes: this.#total });
    while (this.#samples.length > 2 && this.#samples[0]!.at < at - this.windowMs) this.#samples.shift();
  }
  get rate(): number {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last) return 0;
    const span = Math.max(this.now() - first.at, 250);
    return ((last.bytes - first.bytes) * 1000) / span;
  }
}
