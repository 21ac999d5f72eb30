import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { ApiError } from '../http/errors.ts';
import type { Metrics } from '../metrics.ts';
import { type InflightCounter, type InflightCounts, type InflightLevel, MemoryInflight } from './limits-inflight.ts';
import { type AutoscaleRule, TaskPool } from './limits-pool.ts';
import { RedisInflight } from './limits-redis.ts';

/**
 * Backpressure for the coordinator: a request-rate bucket per principal, inflight-slot limits
 * per upload, per principal and globally, and the bounded task queue with its worker pool for
 * object-store control calls. Every refusal is `429 throttled` with `Retry-After` and the name
 * of the limit, counted in `throttled_requests_total{limit}`.
 *
 * Without `redisUrl` everything is per process. With it, the rate buckets are Bottleneck
 * limiters clustered through Redis (shared `id`s, `clearDatastore: false`) and the inflight
 * slots are sorted sets updated by Lua scripts (limits-inflight.ts says why not Bottleneck,
 * limits-redis.ts how slots expire), so the per-principal and global limits hold across
 * replicas. The task queue stays per process: it bounds this process's own workers.
 *
 * Redis keys (all under `keyPrefix`): `{prefix}:inflight:*` (ours) and `b_<prefix>-rate-<principal>_*`
 * (Bottleneck's; they expire after the bucket has been idle long enough to be full again).
 */
export type LimitName = InflightLevel | 'principal_rate' | 'task_queue';

export interface LimitsOptions {
  /** Presigned-but-unreported chunks one upload may hold (MAX_INFLIGHT_PER_UPLOAD). */
  maxInflightPerUpload: number;
  /** …one principal may hold across its uploads (MAX_INFLIGHT_PER_PRINCIPAL). */
  maxInflightPerPrincipal: number;
  /** …all principals together (MAX_INFLIGHT_GLOBAL); with Redis, across all replicas. */
  maxInflightGlobal: number;
  /** Tasks that may wait for a worker before `runTask` refuses (TASK_QUEUE_SIZE). */
  taskQueueSize: number;
  /** Fewest workers, and the starting size (MIN_WORKERS). */
  minWorkers: number;
  /** Most workers (MAX_WORKERS). */
  maxWorkers: number;
  /** Lifetime of presigned URLs, the base of a slot's Redis lease. @default 900 */
  presignTtlSeconds?: number;
  /** How long after its URL expires a slot frees itself in Redis if never released. @default 300 */
  leaseGraceSeconds?: number;
  /** Sustained requests per second per principal. @default 50 */
  ratePerSecond?: number;
  /** Requests a principal may make at once after being idle. @default 100 */
  burst?: number;
  /** Share the limits through this Redis (REDIS_URL); absent → per process. */
  redisUrl?: string;
  /** Prefix of every Redis key; replicas sharing limits use the same one. @default "conveyor" */
  keyPrefix?: string;
  metrics?: Metrics;
  /** Clock for lease times (ms since the epoch). @default Date.now */
  now?: () => number;
  /** The worker pool's resize rule (limits-pool.ts), or false for `setWorkers` only. */
  autoscale?: Partial<AutoscaleRule> | false;
  /** Redis connection errors (the calls that fail also reject). @default ignore */
  onError?: (err: unknown) => void;
}

/** Seconds a refused client should wait: a client's own slots free as it reports chunks, others' take longer. */
const INFLIGHT_RETRY_AFTER: Record<InflightLevel, number> = {
  upload_inflight: 1,
  principal_inflight: 2,
  global_inflight: 2,
};
const TASK_QUEUE_RETRY_AFTER = 1;

/**
 * How a rate of tokens per second maps onto Bottleneck's reservoir increase, which adds whole
 * tokens: `amount` every `intervalMs`, at most every 100 ms, so that `amount / intervalMs` is the
 * rate exactly (50/s → 5 every 100 ms; 0.5/s → 1 every 2 s).
 */
export function bucketRefill(ratePerSecond: number): { amount: number; intervalMs: number } {
  const amount = Math.max(1, Math.ceil(ratePerSecond / 10));
  return { amount, intervalMs: Math.round((1000 * amount) / ratePerSecond) };
}

export interface LimitsSnapshot {
  mode: 'memory' | 'redis';
  /** Slots held, globally and by the principal and upload asked about (0 when not asked). */
  inflight: InflightCounts;
  /** Tokens left in the principal's rate bucket, when a principal was asked about. */
  rateTokens?: number;
  tasks: { workers: number; busy: number; waiting: number; queueSize: number };
  limits: {
    perUpload: number;
    perPrincipal: number;
    global: number;
    ratePerSecond: number;
    burst: number;
    taskQueueSize: number;
    minWorkers: number;
    maxWorkers: number;
    leaseTtlSeconds: number;
  };
}

export class Limits {
  readonly mode: 'memory' | 'redis';
  readonly leaseTtlSeconds: number;
  readonly #options: LimitsOptions;
  readonly #now: () => number;
  readonly #metrics: Metrics | undefined;
  readonly #rate: Bottleneck.Group;
  readonly #rateRetryAfter: number;
  readonly #inflight: InflightCounter;
  readonly #pool: TaskPool;
  readonly #connection: Bottleneck.IORedisConnection | undefined;

  constructor(options: LimitsOptions) {
    validate(options);
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#metrics = options.metrics;
    this.mode = options.redisUrl ? 'redis' : 'memory';
    this.leaseTtlSeconds = (options.presignTtlSeconds ?? 900) + (options.leaseGraceSeconds ?? 300);
    const onError = options.onError ?? (() => {});
    const prefix = options.keyPrefix ?? 'conveyor';
    const limits = {
      perUpload: options.maxInflightPerUpload,
      perPrincipal: options.maxInflightPerPrincipal,
      global: options.maxInflightGlobal,
    };

    const rate = options.ratePerSecond ?? 50;
    const burst = options.burst ?? 100;
    const { amount, intervalMs } = bucketRefill(rate);
    this.#rateRetryAfter = Math.max(1, Math.ceil(intervalMs / 1000));
    const bucket: Bottleneck.ConstructorOptions = {
      id: `${prefix}-rate`,
      reservoir: burst,
      reservoirIncreaseAmount: amount,
      reservoirIncreaseInterval: intervalMs,
      reservoirIncreaseMaximum: burst,
      // An idle bucket is full again after burst / rate seconds; forgetting it then changes nothing.
      timeout: Math.max(60_000, Math.ceil((2 * burst * 1000) / rate)),
    };

    if (options.redisUrl) {
      const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 2 });
      this.#connection = new Bottleneck.IORedisConnection({ client: redis, Redis });
      this.#connection.on('error', onError);
      // clearDatastore: false — a replica starting must not reset the buckets the others share.
      this.#rate = new Bottleneck.Group({
        ...bucket,
        datastore: 'ioredis',
        connection: this.#connection,
        clearDatastore: false,
      });
      this.#inflight = new RedisInflight(redis, limits, prefix, this.#now);
    } else {
      // The local datastore adds tokens on its heartbeat; beat often enough to keep the rate.
      this.#rate = new Bottleneck.Group({ ...bucket, heartbeatInterval: Math.max(10, Math.floor(intervalMs / 4)) });
      this.#inflight = new MemoryInflight(limits);
    }
    this.#rate.on('created', (limiter) => limiter.on('error', onError));

    this.#pool = new TaskPool({
      queueSize: options.taskQueueSize,
      minWorkers: options.minWorkers,
      maxWorkers: options.maxWorkers,
      metrics: options.metrics,
      now: this.#now,
      autoscale: options.autoscale,
      refuse: () => this.#refuse('task_queue', TASK_QUEUE_RETRY_AFTER, 'The server is busy: its task queue is full.'),
    });
  }

  /** Takes one token from the principal's rate bucket, or refuses at once (`principal_rate`); never waits. */
  async takeRequest(principal: string): Promise<void> {
    const limiter = this.#rate.key(principal);
    // incrementReservoir is atomic (in Redis, one script) and returns the new level: a negative
    // level means there was no token, so the decrement is undone and the request refused.
    const left = await limiter.incrementReservoir(-1);
    if (left === null || left === undefined || left >= 0) return;
    await limiter.incrementReservoir(1);
    throw this.#refuse('principal_rate', this.#rateRetryAfter, 'Too many requests from this API key.');
  }

  /**
   * Reserves n inflight slots for an upload at the per-upload, per-principal and global levels,
   * all or none, without waiting; refuses with the first level that is full. Each slot must be
   * freed once with `releaseInflight`. With Redis a slot also frees itself `ttlSeconds` after
   * now (default `leaseTtlSeconds`: the URL's lifetime plus a grace period), in case its release
   * never comes.
   */
  async acquireInflight(
    principal: string,
    uploadId: string,
    n: number,
    opts: { ttlSeconds?: number } = {},
  ): Promise<void> {
    checkCount(n);
    const expiresAt = this.#now() + (opts.ttlSeconds ?? this.leaseTtlSeconds) * 1000;
    const result = await this.#inflight.acquire(principal, uploadId, n, expiresAt);
    if (this.#metrics) this.#metrics.inflight.uploads = result.counts.global;
    if (result.ok) return;
    const messages: Record<InflightLevel, string> = {
      upload_inflight: `This upload already has ${result.counts.upload} of ${this.#options.maxInflightPerUpload} chunks in flight; report uploaded chunks first.`,
      principal_inflight: `This API key already has ${result.counts.principal} of ${this.#options.maxInflightPerPrincipal} chunks in flight.`,
      global_inflight: 'The server has too many chunks in flight.',
    };
    throw this.#refuse(result.level, INFLIGHT_RETRY_AFTER[result.level], messages[result.level]);
  }

  /** Frees n slots of the upload at every level (fewer if it holds fewer). */
  async releaseInflight(principal: string, uploadId: string, n: number): Promise<void> {
    checkCount(n);
    const counts = await this.#inflight.release(principal, uploadId, n);
    if (this.#metrics) this.#metrics.inflight.uploads = counts.global;
  }

  /**
   * Runs an object-store control call (create, list, complete, abort) on the worker pool;
   * refuses at once (`task_queue`) when TASK_QUEUE_SIZE tasks already wait.
   */
  runTask<T>(fn: (signal: AbortSignal) => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
    return this.#pool.run(fn, opts);
  }

  /** Resizes the worker pool, clamped to [minWorkers, maxWorkers]; returns the new size. */
  setWorkers(n: number): Promise<number> {
    return this.#pool.setWorkers(n);
  }

  async snapshot(about: { principal?: string; uploadId?: string } = {}): Promise<LimitsSnapshot> {
    const o = this.#options;
    const inflight = await this.#inflight.counts(about.principal ?? '', about.uploadId ?? '');
    if (this.#metrics) this.#metrics.inflight.uploads = inflight.global;
    const rateTokens =
      about.principal === undefined ? undefined : ((await this.#rate.key(about.principal).currentReservoir()) ?? 0);
    return {
      mode: this.mode,
      inflight,
      ...(rateTokens === undefined ? {} : { rateTokens }),
      tasks: this.#pool.stats(),
      limits: {
        perUpload: o.maxInflightPerUpload,
        perPrincipal: o.maxInflightPerPrincipal,
        global: o.maxInflightGlobal,
        ratePerSecond: o.ratePerSecond ?? 50,
        burst: o.burst ?? 100,
        taskQueueSize: o.taskQueueSize,
        minWorkers: o.minWorkers,
        maxWorkers: o.maxWorkers,
        leaseTtlSeconds: this.leaseTtlSeconds,
      },
    };
  }

  /** Stops the pool (running tasks are aborted), the buckets' timers and the Redis connection. */
  async close(): Promise<void> {
    await this.#pool.close();
    await this.#inflight.close();
    // Bottleneck offers no way to stop a Group's idle-key sweep timer; it is unref'd, but left
    // running it would keep calling a closed Redis connection every `timeout / 2`.
    clearInterval((this.#rate as unknown as { interval?: NodeJS.Timeout }).interval);
    if (this.#connection) {
      await this.#connection.disconnect(true);
    } else {
      await Promise.all(this.#rate.limiters().map(({ limiter }) => limiter.disconnect()));
    }
  }

  #refuse(limit: LimitName, retryAfterSeconds: number, message: string): ApiError {
    this.#metrics?.throttledRequests.inc({ limit });
    return new ApiError('throttled', message, { limit }, { 'Retry-After': String(retryAfterSeconds) });
  }
}

function checkCount(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`Inflight slot count must be a whole number ≥ 1; got ${n}`);
}

function validate(o: LimitsOptions): void {
  const whole = [
    'maxInflightPerUpload',
    'maxInflightPerPrincipal',
    'maxInflightGlobal',
    'taskQueueSize',
    'minWorkers',
    'maxWorkers',
    'burst',
  ] as const;
  for (const name of whole) {
    const v = o[name];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) {
      throw new RangeError(`Limits: ${name} must be a whole number ≥ 1; got ${v}`);
    }
  }
  if (o.minWorkers > o.maxWorkers) {
    throw new RangeError(`Limits: minWorkers (${o.minWorkers}) must not exceed maxWorkers (${o.maxWorkers})`);
  }
  if (o.ratePerSecond !== undefined && !(o.ratePerSecond > 0 && Number.isFinite(o.ratePerSecond))) {
    throw new RangeError(`Limits: ratePerSecond must be a positive number; got ${o.ratePerSecond}`);
  }
}
