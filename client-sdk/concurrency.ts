/**
 * Adaptive concurrency: how many chunks a transfer moves at once. A hill climb on measured
 * throughput with multiplicative decrease on congestion signals (AIMD's shape, TCP's idea):
 *
 * - every `sampleMs` the bytes moved give a rate for the current level; if the last step up
 *   raised the rate by more than `growThreshold`, step up again (probe), otherwise hold;
 * - the rate falling more than `shrinkThreshold` below what this level achieved before steps
 *   down one (falling throughput: a congested link or a slower store);
 * - a throttle (429, 503 SlowDown) multiplies by `throttleFactor` and blocks new starts for
 *   `Retry-After`; a stall (timeout) multiplies by `timeoutFactor`;
 * - hysteresis: different thresholds up and down, `settleSamples` ignored after every change
 *   (the transitional window), and no growth for `cooldownMs` after a throttle, then one step
 *   per sample, so the level does not oscillate.
 *
 * Pure state and arithmetic with an injectable clock; the pool reads `current` and `blockedUntil`.
 */
export interface ConcurrencyOptions {
  /** Level at the start. @default 4 */
  initial: number;
  /** Never below this. @default 1 */
  min: number;
  /** Never above this. @default 16 in Node, 6 in browsers (a browser allows 6 connections per host on HTTP/1.1) */
  max: number;
  /** False: stay at `initial`, except for throttles. @default true */
  adaptive: boolean;
  /** Length of one throughput sample. @default 1000 */
  sampleMs: number;
  /** A step up must raise the rate by more than this fraction to be followed by another. @default 0.05 */
  growThreshold: number;
  /** The rate must fall by more than this fraction below the level's record to step down. @default 0.2 */
  shrinkThreshold: number;
  /** Samples ignored after a change. @default 1 */
  settleSamples: number;
  /** Multiplier on a throttle. @default 0.5 */
  throttleFactor: number;
  /** Multiplier on a timeout. @default 0.75 */
  timeoutFactor: number;
  /** No growth for this long after a throttle (at least `Retry-After`). @default 3000 */
  cooldownMs: number;
  /** Re-probe upwards after this many samples at a plateau (conditions change). @default 10 */
  reprobeSamples: number;
}

export const defaultConcurrency = (runtime: 'node' | 'browser'): ConcurrencyOptions => ({
  initial: 4,
  min: 1,
  max: runtime === 'node' ? 16 : 6,
  adaptive: true,
  sampleMs: 1000,
  growThreshold: 0.05,
  shrinkThreshold: 0.2,
  settleSamples: 1,
  throttleFactor: 0.5,
  timeoutFactor: 0.75,
  cooldownMs: 3000,
  reprobeSamples: 10,
});

export type ConcurrencyChangeReason = 'probe' | 'plateau' | 'falling' | 'throttle' | 'timeout' | 'recover';

export interface ConcurrencyChange {
  at: number;
  from: number;
  to: number;
  reason: ConcurrencyChangeReason;
  /** Bytes per second measured in the sample that led to the change, when there was one. */
  rate?: number;
}

/** What a caller can read: the limits, the current level and the recent changes. */
export interface ConcurrencySnapshot {
  current: number;
  min: number;
  max: number;
  adaptive: boolean;
  /** New work waits until this time (ms since the epoch) after a `Retry-After`; 0 when not blocked. */
  blockedUntil: number;
  changes: readonly ConcurrencyChange[];
}

export class AdaptiveConcurrency {
  readonly options: Readonly<ConcurrencyOptions>;
  #current: number;
  #blockedUntil = 0;
  #cooldownUntil = 0;
  #settle = 0;
  #plateauSamples = 0;
  /** `probing`: step up while each step pays; `holding`: at a plateau, re-probe every `reprobeSamples`. */
  #mode: 'probing' | 'holding' = 'probing';
  #sampleStart: number;
  #sampleBytes = 0;
  /** The best rate seen at each level (bytes/s); forgotten above a level after a throttle. */
  readonly #rateAt = new Map<number, number>();
  /** Level before the last step up, to judge whether the step helped. */
  #previousLevel: number | undefined;
  readonly #changes: ConcurrencyChange[] = [];
  readonly #now: () => number;
  onChange: ((change: ConcurrencyChange) => void) | undefined;

  constructor(options: Partial<ConcurrencyOptions> = {}, runtime: 'node' | 'browser' = 'node', now = Date.now) {
    const o = { ...defaultConcurrency(runtime), ...options };
    if (!(Number.isInteger(o.min) && o.min >= 1))
      throw new TypeError(`concurrency.min must be an integer ≥ 1, got ${o.min}`);
    if (!(Number.isInteger(o.max) && o.max >= o.min)) {
      throw new TypeError(`concurrency.max must be an integer ≥ min (${o.min}), got ${o.max}`);
    }
    if (options.initial === undefined) o.initial = Math.min(o.max, Math.max(o.min, o.initial));
    if (!(Number.isInteger(o.initial) && o.initial >= o.min && o.initial <= o.max)) {
      throw new TypeError(`concurrency.initial must be an integer in [${o.min}, ${o.max}], got ${o.initial}`);
    }
    this.options = Object.freeze(o);
    this.#current = o.initial;
    this.#now = now;
    this.#sampleStart = now();
  }

  get current(): number {
    return this.#current;
  }

  get blockedUntil(): number {
    return this.#blockedUntil > this.#now() ? this.#blockedUntil : 0;
  }

  snapshot(): ConcurrencySnapshot {
    const { min, max, adaptive } = this.options;
    return { current: this.#current, min, max, adaptive, blockedUntil: this.blockedUntil, changes: [...this.#changes] };
  }

  /** Counts bytes moved (sent or received) toward the current sample. */
  recordBytes(n: number): void {
    if (n > 0) this.#sampleBytes += n;
  }

  /**
   * Closes the sample when `sampleMs` has passed and maybe changes the level. `saturated`: the
   * pool had work for every slot during the sample (a rate measured while starved of work says
   * nothing about the level).
   */
  tick(saturated = true): ConcurrencyChange | undefined {
    const now = this.#now();
    const elapsed = now - this.#sampleStart;
    if (elapsed < this.options.sampleMs) return undefined;
    const rate = (this.#sampleBytes * 1000) / elapsed;
    this.#sampleStart = now;
    this.#sampleBytes = 0;
    if (!this.options.adaptive || !saturated || now < this.#blockedUntil) return undefined;
    if (this.#settle > 0) {
      this.#settle--;
      return undefined;
    }
    const c = this.#current;
    const record = this.#rateAt.get(c);
    this.#rateAt.set(c, Math.max(record ?? 0, rate));
    if (record !== undefined && rate < record * (1 - this.options.shrinkThreshold) && c > this.options.min) {
      // Falling well below what this level did before: the path is congested; back off one step.
      this.#rateAt.delete(c);
      this.#mode = 'holding';
      return this.#set(c - 1, 'falling', rate);
    }
    if (now < this.#cooldownUntil || c >= this.options.max) return undefined;
    if (this.#mode === 'holding') {
      // At a plateau: try one step up now and then, conditions change.
      if (++this.#plateauSamples < this.options.reprobeSamples) return undefined;
      this.#plateauSamples = 0;
      this.#rateAt.delete(c + 1);
      this.#mode = 'probing';
      return this.#set(c + 1, 'probe', rate, c);
    }
    const prev = this.#previousLevel === undefined ? undefined : this.#rateAt.get(this.#previousLevel);
    if (prev === undefined || rate > prev * (1 + this.options.growThreshold)) {
      return this.#set(c + 1, this.#changes.length > 0 && prev === undefined ? 'recover' : 'probe', rate, c);
    }
    // The last step up did not pay: hold, and go back down if it made things worse.
    this.#mode = 'holding';
    this.#plateauSamples = 0;
    if (rate < prev && this.#previousLevel! < c) return this.#set(this.#previousLevel!, 'plateau', rate);
    return undefined;
  }

  /** A 429 or 503 SlowDown: cut, hold new starts for `retryAfterMs`, and no growth for a while. */
  onThrottle(retryAfterMs = 0): ConcurrencyChange | undefined {
    const now = this.#now();
    this.#blockedUntil = Math.max(this.#blockedUntil, now + retryAfterMs);
    // Several workers see the same throttle at once: one cut per cooldown, not one per worker.
    const alreadyCut = now < this.#cooldownUntil && this.#changes.at(-1)?.reason === 'throttle';
    this.#cooldownUntil = Math.max(this.#cooldownUntil, now + Math.max(this.options.cooldownMs, retryAfterMs * 2));
    if (alreadyCut) return undefined;
    this.#forgetAbove(this.#current - 1);
    this.#mode = 'probing'; // recover one step per sample once the cooldown is over
    return this.#set(Math.floor(this.#current * this.options.throttleFactor), 'throttle');
  }

  /** A request stalled (no progress for its timeout). */
  onTimeout(): ConcurrencyChange | undefined {
    const now = this.#now();
    if (now < this.#cooldownUntil && this.#changes.at(-1)?.reason === 'timeout') return undefined;
    this.#cooldownUntil = Math.max(this.#cooldownUntil, now + this.options.cooldownMs);
    this.#forgetAbove(this.#current - 1);
    this.#mode = 'probing';
    return this.#set(Math.floor(this.#current * this.options.timeoutFactor), 'timeout');
  }

  #forgetAbove(level: number): void {
    for (const k of [...this.#rateAt.keys()]) if (k > level) this.#rateAt.delete(k);
  }

  /** `stepFrom`: the level a step up leaves, whose rate the next sample is compared with. */
  #set(to: number, reason: ConcurrencyChangeReason, rate?: number, stepFrom?: number): ConcurrencyChange | undefined {
    const from = this.#current;
    const next = Math.min(this.options.max, Math.max(this.options.min, to));
    this.#previousLevel = stepFrom;
    if (next === from) return undefined;
    this.#current = next;
    this.#settle = this.options.settleSamples;
    const change: ConcurrencyChange = {
      at: this.#now(),
      from,
      to: next,
      reason,
      ...(rate !== undefined ? { rate } : {}),
    };
    this.#changes.push(change);
    if (this.#changes.length > 50) this.#changes.shift();
    this.onChange?.(change);
    return change;
  }
}
