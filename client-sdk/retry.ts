import { HTTPError, NetworkError, TimeoutError } from './errors.ts';

/**
 * The retry policy, as data (in the manner of ky's `retry` option and Uppy's `retryDelays`):
 * callers can read `defaultRetryPolicy`, override any field per client or per transfer, and
 * test a decision with `retryDecision` without sending anything.
 */
export interface RetryPolicy {
  /** Retries per chunk or per API call after the first attempt (attempts ≤ limit + 1). @default 5 */
  limit: number;
  /** HTTP statuses that are retried with backoff. @default [408, 429, 500, 502, 503, 504] */
  statusCodes: readonly number[];
  /** Store error codes (S3 `<Code>`) retried whatever their status, e.g. S3's 400 `RequestTimeout`. @default ['RequestTimeout', 'SlowDown', 'InternalError', 'ServiceUnavailable'] */
  storeCodes: readonly string[];
  /** Statuses that mean "too fast": they also cut the pool's concurrency. @default [429, 503] */
  throttleStatusCodes: readonly number[];
  /**
   * Coordinator error codes retried whatever their status, after `Retry-After`: a `409
   * idempotency_key_in_use` means the first attempt of this very request is still held by the
   * server (or its failure is not yet released), so the retry is answered once it is.
   * @default ['idempotency_key_in_use']
   */
  coordinatorCodes: readonly string[];
  /** Throttled answers (429…) do not use up `limit`; they have this budget of their own. @default 30 */
  throttleLimit: number;
  /** Backoff before retry n (1-based) is at most `min(maxDelayMs, baseDelayMs * factor^(n-1))`. @default 300 */
  baseDelayMs: number;
  /** @default 2 */
  factor: number;
  /** @default 20_000 */
  maxDelayMs: number;
  /** `full`: the delay is uniform in [0, cap] (AWS "Exponential Backoff and Jitter"); `none`: exactly cap. @default 'full' */
  jitter: 'full' | 'none';
  /** A `Retry-After` longer than this is cut to it. @default 60_000 */
  maxRetryAfterMs: number;
  /** Retry connection errors and stalls (`NetworkError`, `TimeoutError`). @default true */
  retryNetworkErrors: boolean;
}

export const defaultRetryPolicy: Readonly<RetryPolicy> = Object.freeze({
  limit: 5,
  statusCodes: Object.freeze([408, 429, 500, 502, 503, 504]),
  storeCodes: Object.freeze(['RequestTimeout', 'SlowDown', 'InternalError', 'ServiceUnavailable']),
  coordinatorCodes: Object.freeze(['idempotency_key_in_use']),
  throttleStatusCodes: Object.freeze([429, 503]),
  throttleLimit: 30,
  baseDelayMs: 300,
  factor: 2,
  maxDelayMs: 20_000,
  jitter: 'full',
  maxRetryAfterMs: 60_000,
  retryNetworkErrors: true,
});

export function resolveRetryPolicy(...overrides: Array<Partial<RetryPolicy> | undefined>): RetryPolicy {
  const p: RetryPolicy = Object.assign({}, defaultRetryPolicy, ...overrides.filter(Boolean));
  for (const k of ['limit', 'throttleLimit', 'baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs'] as const) {
    if (!Number.isFinite(p[k]) || p[k] < 0) throw new TypeError(`retry.${k} must be a number ≥ 0, got ${p[k]}`);
  }
  if (!(p.factor >= 1)) throw new TypeError(`retry.factor must be ≥ 1, got ${p.factor}`);
  return p;
}

/** What to do after a failed attempt. */
export type RetryDecision =
  | { action: 'retry'; delayMs: number; reason: string; throttled: boolean }
  /** The presigned URL expired (403 "Request has expired"): presign again, then retry at once. */
  | { action: 'represign'; delayMs: 0; reason: string; throttled: false }
  | { action: 'fail'; reason: string };

export interface AttemptCounts {
  /** Failed attempts so far that count against `limit` (this one included). */
  retries: number;
  /** Throttled answers so far (this one included), against `throttleLimit`. */
  throttles: number;
}

/**
 * Which budget a failure uses: `throttles` for "too fast" answers and for a coordinator telling
 * the client to wait (`coordinatorCodes`), `retries` for everything else. Callers count with it
 * before asking `retryDecision`.
 */
export function budgetOf(err: unknown, policy: RetryPolicy): keyof AttemptCounts {
  if (!(err instanceof HTTPError)) return 'retries';
  return isThrottle(err, policy) || isCoordinatorWait(err, policy) ? 'throttles' : 'retries';
}

/** "Too fast": a throttling status, or S3's `SlowDown` whatever status carries it. */
const isThrottle = (err: HTTPError, policy: RetryPolicy) =>
  policy.throttleStatusCodes.includes(err.status) || err.code === 'SlowDown';

const isCoordinatorWait = (err: HTTPError, policy: RetryPolicy) =>
  err.details.origin === 'coordinator' && policy.coordinatorCodes.includes(err.code);

/** Backoff before retry number `n` (1-based). `random` is injectable for tests. */
export function backoffDelay(n: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * policy.factor ** Math.max(0, n - 1));
  return policy.jitter === 'full' ? Math.floor(random() * cap) : cap;
}

/** `Retry-After` (RFC 9110 §10.2.3: delay-seconds or an HTTP-date) in ms, or undefined. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** True for a store 403 that means the presigned URL is too old, rather than a bad signature. */
export function isExpiredUrlError(err: unknown): boolean {
  if (!(err instanceof HTTPError) || err.status !== 403) return false;
  return err.code === 'url_expired' || /request has expired|expired/i.test(err.message);
}

/**
 * The decision for one failed attempt: `counts` already include this failure. A 429/503 waits
 * `Retry-After` when the server gave one (capped), else the backoff; everything retried waits at
 * least the backoff of its retry number, so a storm of failures spreads out.
 */
export function retryDecision(
  err: unknown,
  counts: AttemptCounts,
  policy: RetryPolicy,
  random: () => number = Math.random,
): RetryDecision {
  if (err instanceof NetworkError || err instanceof TimeoutError) {
    if (!policy.retryNetworkErrors) return { action: 'fail', reason: err.code };
    if (counts.retries > policy.limit) return { action: 'fail', reason: `${err.code}: retries exhausted` };
    return {
      action: 'retry',
      delayMs: backoffDelay(counts.retries, policy, random),
      reason: err.code,
      throttled: false,
    };
  }
  if (!(err instanceof HTTPError)) return { action: 'fail', reason: 'not retryable' };
  if (isExpiredUrlError(err)) {
    if (counts.retries > policy.limit) return { action: 'fail', reason: 'url expired: retries exhausted' };
    return { action: 'represign', delayMs: 0, reason: 'url_expired', throttled: false };
  }
  const throttled = isThrottle(err, policy);
  // Told to wait (the key's first attempt is still held): the throttle budget, without slowing the pool.
  const budget = budgetOf(err, policy);
  const retryable =
    budget === 'throttles' || policy.statusCodes.includes(err.status) || policy.storeCodes.includes(err.code);
  if (!retryable) return { action: 'fail', reason: `${err.status} ${err.code}` };
  const exhausted = budget === 'throttles' ? counts.throttles > policy.throttleLimit : counts.retries > policy.limit;
  if (exhausted) return { action: 'fail', reason: `${err.status} ${err.code}: retries exhausted` };
  const n = counts[budget];
  const backoff = backoffDelay(n, policy, random);
  const after = err.details.retryAfterMs;
  const delayMs = after !== undefined ? Math.min(policy.maxRetryAfterMs, after) : backoff;
  return { action: 'retry', delayMs, reason: `${err.status} ${err.code}`, throttled };
}
