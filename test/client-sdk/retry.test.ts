import test from 'ava';
import { HTTPError, NetworkError, TimeoutError } from '../../client-sdk/errors.ts';
import {
  backoffDelay,
  budgetOf,
  defaultRetryPolicy,
  parseRetryAfter,
  resolveRetryPolicy,
  retryDecision,
} from '../../client-sdk/retry.ts';

const store = (status: number, code: string, message = code, retryAfterMs?: number) =>
  new HTTPError(status, code, message, { origin: 'store', ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });

test('the default policy is inspectable data: 5 retries, full jitter, the retryable statuses', (t) => {
  t.is(defaultRetryPolicy.limit, 5);
  t.is(defaultRetryPolicy.jitter, 'full');
  t.deepEqual([...defaultRetryPolicy.statusCodes], [408, 429, 500, 502, 503, 504]);
  t.true(Object.isFrozen(defaultRetryPolicy));
  t.throws(() => resolveRetryPolicy({ limit: -1 }), { message: /retry.limit must be a number ≥ 0, got -1/ });
});

test('backoff: within [0, min(max, base·factor^(n-1))] for every n and random value; no jitter gives the cap', (t) => {
  const p = resolveRetryPolicy();
  for (let n = 1; n <= 30; n++) {
    const cap = Math.min(p.maxDelayMs, p.baseDelayMs * p.factor ** (n - 1));
    for (const r of [0, 0.001, 0.5, 0.999999]) {
      const d = backoffDelay(n, p, () => r);
      t.true(d >= 0 && d <= cap, `n=${n} r=${r} d=${d}`);
    }
    t.is(backoffDelay(n, { ...p, jitter: 'none' }), cap);
  }
  t.is(backoffDelay(100, { ...p, jitter: 'none' }), p.maxDelayMs, 'capped');
});

test('network errors, timeouts, 5xx, 408 and 429 retry up to the limit; then fail', (t) => {
  const p = resolveRetryPolicy();
  const errs = [
    new NetworkError('reset', { code: 'ECONNRESET' }),
    new TimeoutError(10),
    store(500, 'InternalError'),
    store(408, 'x'),
    store(502, 'x'),
  ];
  for (const err of errs) {
    for (let retries = 1; retries <= 5; retries++)
      t.is(retryDecision(err, { retries, throttles: 0 }, p).action, 'retry');
    t.is(retryDecision(err, { retries: 6, throttles: 0 }, p).action, 'fail');
  }
  t.is(
    retryDecision(store(400, 'RequestTimeout'), { retries: 1, throttles: 0 }, p).action,
    'retry',
    "S3's 400 RequestTimeout",
  );
});

test('other 4xx fail fast with the server code', (t) => {
  const p = resolveRetryPolicy();
  for (const [status, code] of [
    [400, 'invalid_request'],
    [404, 'upload_not_found'],
    [409, 'upload_not_in_progress'],
    [400, 'BadDigest'],
    [403, 'SignatureDoesNotMatch'],
  ] as const) {
    const d = retryDecision(
      new HTTPError(status, code, 'no', { origin: 'coordinator' }),
      { retries: 1, throttles: 0 },
      p,
    );
    t.is(d.action, 'fail', `${status} ${code}`);
  }
});

test('409 idempotency_key_in_use from the coordinator waits Retry-After and retries; other 409s fail', (t) => {
  const p = resolveRetryPolicy();
  const inUse = new HTTPError(409, 'idempotency_key_in_use', 'held', { origin: 'coordinator', retryAfterMs: 1000 });
  t.is(budgetOf(inUse, p), 'throttles', 'a wait the server asks for, not a failure');
  t.like(retryDecision(inUse, { retries: 0, throttles: 1 }, p), { action: 'retry', delayMs: 1000, throttled: false });
  t.is(retryDecision(inUse, { retries: 0, throttles: 31 }, p).action, 'fail', 'within the throttle budget');
  t.is(retryDecision(inUse, { retries: 1, throttles: 0 }, { ...p, coordinatorCodes: [] }).action, 'fail');
  const fromStore = new HTTPError(409, 'idempotency_key_in_use', 'x', { origin: 'store' });
  t.is(retryDecision(fromStore, { retries: 1, throttles: 0 }, p).action, 'fail', 'only the coordinator says it');
});

test('403 "Request has expired" re-presigns', (t) => {
  const p = resolveRetryPolicy();
  t.is(
    retryDecision(store(403, 'AccessDenied', 'Request has expired'), { retries: 1, throttles: 0 }, p).action,
    'represign',
  );
  t.is(
    retryDecision(store(403, 'url_expired', 'The presigned URL has expired.'), { retries: 1, throttles: 0 }, p).action,
    'represign',
  );
});

test('429 and 503 SlowDown are throttles: they honour Retry-After (capped) and have their own budget', (t) => {
  const p = resolveRetryPolicy({ maxRetryAfterMs: 5000 });
  const d = retryDecision(store(429, 'throttled', 'slow', 2000), { retries: 0, throttles: 1 }, p);
  t.deepEqual(d, { action: 'retry', delayMs: 2000, reason: '429 throttled', throttled: true });
  const capped = retryDecision(store(429, 'throttled', 'slow', 600_000), { retries: 0, throttles: 1 }, p);
  t.is(capped.action === 'retry' && capped.delayMs, 5000);
  t.is(retryDecision(store(503, 'SlowDown'), { retries: 0, throttles: 10 }, p).action, 'retry', 'beyond `limit`');
  t.is(retryDecision(store(503, 'SlowDown'), { retries: 0, throttles: p.throttleLimit + 1 }, p).action, 'fail');
});

test('Retry-After: delay-seconds and HTTP-date (RFC 9110 §10.2.3)', (t) => {
  t.is(parseRetryAfter('3'), 3000);
  t.is(parseRetryAfter('0.5'), 500);
  const now = Date.parse('2030-01-01T00:00:00Z');
  t.is(parseRetryAfter('Tue, 01 Jan 2030 00:00:10 GMT', now), 10_000);
  t.is(parseRetryAfter('soon'), undefined);
  t.is(parseRetryAfter(undefined), undefined);
});

test('SlowDown counts against the throttle budget whatever its status, so the budget it is judged by grows', (t) => {
  const p = resolveRetryPolicy({ throttleStatusCodes: [429] });
  const slow = new HTTPError(503, 'SlowDown', 'slow down', { origin: 'store' });
  t.is(budgetOf(slow, p), 'throttles');
  t.like(retryDecision(slow, { retries: 0, throttles: 1 }, p), { action: 'retry', throttled: true });
  t.is(retryDecision(slow, { retries: 0, throttles: p.throttleLimit + 1 }, p).action, 'fail');
});
