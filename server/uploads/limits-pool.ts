import Bottleneck from 'bottleneck';
import { ApiError } from '../http/errors.ts';
import type { Metrics } from '../metrics.ts';

/**
 * When the worker pool grows or shrinks by itself, from queue depth, object-store latency,
 * error rate and utilisation. Defaults:
 * - grow by one when tasks have waited for more than 1 s with every worker busy — unless the
 *   store is failing (over 5% of recent calls) or slowing down (recent latency over 3× the best
 *   seen), where more concurrency would only add to the pile;
 * - shrink by one when over 20% of recent calls failed (ease off a struggling store), or after
 *   10 s with nothing running or waiting;
 * - never resize twice within 2 s (the cooldown, so one burst does not swing the pool).
 * `setWorkers` overrides it at any time; `autoscale: false` turns it off.
 */
export interface AutoscaleRule {
  /** @default 1000 */
  growAfterMs: number;
  /** @default 10000 */
  shrinkAfterMs: number;
  /** @default 2000 */
  cooldownMs: number;
  /** How often the rule is evaluated. @default 250 */
  tickMs: number;
  /** Recent error rate above which the pool shrinks. @default 0.2 */
  shrinkErrorRate: number;
  /** Recent error rate above which the pool does not grow. @default 0.05 */
  growMaxErrorRate: number;
  /** Recent latency, as a multiple of the best seen, above which the pool does not grow. @default 3 */
  growMaxLatencyFactor: number;
}

export const DEFAULT_AUTOSCALE: AutoscaleRule = {
  growAfterMs: 1000,
  shrinkAfterMs: 10_000,
  cooldownMs: 2000,
  tickMs: 250,
  shrinkErrorRate: 0.2,
  growMaxErrorRate: 0.05,
  growMaxLatencyFactor: 3,
};

/** How many recent task outcomes the error rate and latency are taken over. */
const RECENT = 20;

export interface PoolState {
  workers: number;
  minWorkers: number;
  maxWorkers: number;
  /** Since when tasks have been waiting without a break, or null if none wait. */
  waitingSince: number | null;
  /** Since when nothing has been running or waiting, or null if busy. */
  idleSince: number | null;
  /** When the pool was last resized. */
  lastResize: number;
  /** Tasks running now. @default workers (all busy) */
  busy?: number;
  /** Share of the recent tasks that failed (0..1). @default 0 */
  errorRate?: number;
  /** Mean duration of the recent tasks, and the lowest such mean seen (ms). */
  latencyMs?: number | null;
  bestLatencyMs?: number | null;
}

/** The autoscale rule as a pure function: the worker count the pool should have at `now`. */
export function nextWorkerCount(s: PoolState, now: number, rule: AutoscaleRule): number {
  if (now - s.lastResize < rule.cooldownMs) return s.workers;
  const errorRate = s.errorRate ?? 0;
  if (errorRate > rule.shrinkErrorRate && s.workers > s.minWorkers) return s.workers - 1;
  const saturated = (s.busy ?? s.workers) >= s.workers;
  const slowing =
    s.latencyMs != null && s.bestLatencyMs != null && s.latencyMs > rule.growMaxLatencyFactor * s.bestLatencyMs;
  if (
    s.waitingSince !== null &&
    now - s.waitingSince > rule.growAfterMs &&
    s.workers < s.maxWorkers &&
    saturated &&
    errorRate <= rule.growMaxErrorRate &&
    !slowing
  ) {
    return s.workers + 1;
  }
  if (s.idleSince !== null && now - s.idleSince > rule.shrinkAfterMs && s.workers > s.minWorkers) {
    return s.workers - 1;
  }
  return s.workers;
}

export interface TaskPoolOptions {
  /** Tasks that may wait for a worker; one more is refused by `refuse()`. */
  queueSize: number;
  minWorkers: number;
  maxWorkers: number;
  /** Builds the error a refused task rejects with (the caller counts it and names the limit). */
  refuse: () => Error;
  metrics?: Metrics;
  now?: () => number;
  /** The built-in resize rule, or false to size the pool only through `setWorkers`. */
  autoscale?: Partial<AutoscaleRule> | false;
}

/**
 * The bounded server task queue and its worker pool, for object-store control calls: a
 * Bottleneck limiter whose `maxConcurrent` is the worker count and whose `highWater` with the
 * OVERFLOW strategy refuses a task when `queueSize` tasks already wait (Bottleneck rejects it
 * with a BottleneckError before it starts, which `run` turns into `refuse()`).
 */
export class TaskPool {
  readonly queueSize: number;
  readonly minWorkers: number;
  readonly maxWorkers: number;
  readonly #limiter: Bottleneck;
  readonly #abort = new AbortController();
  readonly #options: TaskPoolOptions;
  readonly #now: () => number;
  readonly #rule: AutoscaleRule | null;
  readonly #timer: NodeJS.Timeout | undefined;
  #workers: number;
  #waiting = 0;
  #busy = 0;
  #waitingSince: number | null = null;
  #idleSince: number | null;
  /** No resize yet: the first one needs no cooldown. */
  #lastResize = Number.NEGATIVE_INFINITY;
  #closed = false;
  /** Outcomes of the last RECENT tasks: duration in ms, and whether they failed. */
  readonly #recent: Array<{ ms: number; failed: boolean }> = [];
  #bestLatencyMs: number | null = null;

  constructor(options: TaskPoolOptions) {
    this.#options = options;
    this.queueSize = options.queueSize;
    this.minWorkers = options.minWorkers;
    this.maxWorkers = options.maxWorkers;
    this.#now = options.now ?? Date.now;
    this.#workers = options.minWorkers;
    this.#idleSince = this.#now();
    this.#limiter = new Bottleneck({
      maxConcurrent: this.#workers,
      highWater: options.queueSize,
      strategy: Bottleneck.strategy.OVERFLOW,
    });
    this.#rule = options.autoscale === false ? null : { ...DEFAULT_AUTOSCALE, ...options.autoscale };
    if (this.#rule) this.#timer = setInterval(() => void this.autoscaleTick(), this.#rule.tickMs).unref();
    options.metrics?.taskQueueLimit.set(options.queueSize);
    this.#changed();
  }

  get workers(): number {
    return this.#workers;
  }

  stats() {
    const n = this.#recent.length;
    return {
      workers: this.#workers,
      busy: this.#busy,
      waiting: this.#waiting,
      queueSize: this.queueSize,
      errorRate: n ? this.#recent.filter((r) => r.failed).length / n : 0,
      latencyMs: n ? this.#recent.reduce((a, r) => a + r.ms, 0) / n : null,
      bestLatencyMs: this.#bestLatencyMs,
    };
  }

  #record(ms: number, failed: boolean): void {
    this.#recent.push({ ms, failed });
    if (this.#recent.length > RECENT) this.#recent.shift();
    if (this.#recent.length === RECENT) {
      const mean = this.#recent.reduce((a, r) => a + r.ms, 0) / RECENT;
      this.#bestLatencyMs = this.#bestLatencyMs === null ? mean : Math.min(this.#bestLatencyMs, mean);
    }
  }

  /**
   * Runs `fn` on a worker. Rejects with `refuse()` at once when the queue is full, and with the
   * abort reason when `signal` aborts while the task waits. `fn` gets a signal that aborts with
   * the caller's or when the pool closes.
   */
  async run<T>(fn: (signal: AbortSignal) => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    if (this.#closed) throw new ApiError('shutting_down');
    options.signal?.throwIfAborted();
    const signal = options.signal ? AbortSignal.any([this.#abort.signal, options.signal]) : this.#abort.signal;
    let started = false;
    const job = async (): Promise<T> => {
      started = true;
      this.#waiting--;
      this.#busy++;
      this.#changed();
      const t0 = this.#now();
      let failed = true;
      try {
        signal.throwIfAborted(); // the caller gave up while the task waited
        const out = await fn(signal);
        failed = false;
        return out;
      } catch (err) {
        // A client's mistake (a 4xx) says nothing about the store's health.
        if (err instanceof ApiError && err.status < 500) failed = false;
        throw err;
      } finally {
        this.#busy--;
        this.#record(this.#now() - t0, failed);
        this.#changed();
      }
    };
    this.#waiting++;
    this.#changed();
    const scheduled = this.#limiter.schedule(job).catch((err: unknown) => {
      if (!started) {
        this.#waiting--;
        this.#changed();
        if (err instanceof Bottleneck.BottleneckError) {
          throw this.#closed ? new ApiError('shutting_down') : this.#options.refuse();
        }
      }
      throw err;
    });
    if (!options.signal) return scheduled;
    scheduled.catch(() => {}); // the race below may settle first
    return raceAbort(scheduled, options.signal);
  }

  /** Resizes the pool, clamped to [minWorkers, maxWorkers]; returns the new size. */
  async setWorkers(n: number): Promise<number> {
    const next = Math.min(this.maxWorkers, Math.max(this.minWorkers, Math.round(n)));
    this.#lastResize = this.#now();
    if (this.#idleSince !== null) this.#idleSince = this.#lastResize; // the next shrink waits a full idle period
    if (next !== this.#workers) {
      this.#workers = next;
      this.#changed();
      await this.#limiter.updateSettings({ maxConcurrent: next });
    }
    return next;
  }

  /** Applies the autoscale rule once; the pool's timer calls it every `tickMs`. */
  async autoscaleTick(): Promise<void> {
    if (!this.#rule || this.#closed) return;
    const { errorRate, latencyMs, bestLatencyMs } = this.stats();
    const state: PoolState = {
      workers: this.#workers,
      minWorkers: this.minWorkers,
      maxWorkers: this.maxWorkers,
      waitingSince: this.#waitingSince,
      idleSince: this.#idleSince,
      lastResize: this.#lastResize,
      busy: this.#busy,
      errorRate,
      latencyMs,
      bestLatencyMs,
    };
    const next = nextWorkerCount(state, this.#now(), this.#rule);
    if (next !== this.#workers) await this.setWorkers(next);
  }

  /** Refuses new tasks, drops waiting ones, aborts running ones and waits for them to return. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#abort.abort(new ApiError('shutting_down'));
    await this.#limiter.stop({ dropWaitingJobs: true });
  }

  /** Keeps the gauges and the waiting/idle clocks current after every change. */
  #changed(): void {
    const now = this.#now();
    if (this.#waiting === 0) this.#waitingSince = null;
    else this.#waitingSince ??= now;
    if (this.#waiting === 0 && this.#busy === 0) this.#idleSince ??= now;
    else this.#idleSince = null;
    const m = this.#options.metrics;
    m?.taskQueueDepth.set(this.#waiting);
    m?.workerBusy.set(this.#busy);
    m?.workerCount.set(this.#workers);
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
