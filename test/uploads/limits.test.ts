import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { ApiError } from '../../server/http/errors.ts';
import { createMetrics, type Metrics } from '../../server/metrics.ts';
import { bucketRefill, Limits, type LimitsOptions } from '../../server/uploads/limits.ts';
import { DEFAULT_AUTOSCALE, nextWorkerCount, TaskPool } from '../../server/uploads/limits-pool.ts';

const base: LimitsOptions = {
  maxInflightPerUpload: 2,
  maxInflightPerPrincipal: 3,
  maxInflightGlobal: 4,
  taskQueueSize: 3,
  minWorkers: 2,
  maxWorkers: 4,
  autoscale: false,
};

function make(t: { teardown(fn: () => Promise<void>): void }, options: Partial<LimitsOptions> = {}) {
  const metrics = createMetrics();
  const limits = new Limits({ ...base, metrics, ...options });
  t.teardown(() => limits.close());
  return { limits, metrics };
}

async function throttledCount(metrics: Metrics, limit: string): Promise<number> {
  const { values } = await metrics.throttledRequests.get();
  return values.find((v) => v.labels.limit === limit)?.value ?? 0;
}

async function gauge(metrics: Metrics, name: 'inflightChunks' | 'taskQueueDepth' | 'workerBusy' | 'workerCount') {
  return (await metrics[name].get()).values[0]?.value ?? 0;
}

function isThrottled(limit: string) {
  return (err: unknown) =>
    err instanceof ApiError &&
    err.status === 429 &&
    err.code === 'throttled' &&
    err.details.limit === limit &&
    /^[1-9]\d*$/.test(err.headers['Retry-After'] ?? '');
}

/** Waits until `cond()` holds: Bottleneck moves jobs on timers, and tests in a file run concurrently. */
async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(2);
  }
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

test('per-upload, per-principal and global limits refuse with their names and Retry-After', async (t) => {
  const { limits, metrics } = make(t);
  await limits.acquireInflight('alice', 'u1', 2);
  const upload = await t.throwsAsync(limits.acquireInflight('alice', 'u1', 1), { instanceOf: ApiError });
  t.true(isThrottled('upload_inflight')(upload));

  await limits.acquireInflight('alice', 'u2', 1);
  const principal = await t.throwsAsync(limits.acquireInflight('alice', 'u3', 1), { instanceOf: ApiError });
  t.true(isThrottled('principal_inflight')(principal));

  await limits.acquireInflight('bob', 'u4', 1);
  const global = await t.throwsAsync(limits.acquireInflight('carol', 'u5', 1), { instanceOf: ApiError });
  t.true(isThrottled('global_inflight')(global));

  t.is(await throttledCount(metrics, 'upload_inflight'), 1);
  t.is(await throttledCount(metrics, 'principal_inflight'), 1);
  t.is(await throttledCount(metrics, 'global_inflight'), 1);
  t.is(await gauge(metrics, 'inflightChunks'), 4);
});

test('a refused acquire changes nothing (all or nothing)', async (t) => {
  const { limits } = make(t, { maxInflightPerUpload: 10 });
  await limits.acquireInflight('alice', 'u1', 2);
  const before = await limits.snapshot({ principal: 'alice', uploadId: 'u1' });
  // Fits the upload (10) but not the principal (3): nothing may be taken at the upload level.
  await t.throwsAsync(limits.acquireInflight('alice', 'u1', 2), { instanceOf: ApiError });
  const after = await limits.snapshot({ principal: 'alice', uploadId: 'u1' });
  t.deepEqual(after.inflight, before.inflight);
  t.deepEqual(after.inflight, { upload: 2, principal: 2, global: 2 });
  // Fits principal and upload but not global (4) for another principal.
  await limits.acquireInflight('bob', 'u2', 2);
  await t.throwsAsync(limits.acquireInflight('carol', 'u3', 1), { instanceOf: ApiError });
  t.deepEqual((await limits.snapshot({ principal: 'carol', uploadId: 'u3' })).inflight, {
    upload: 0,
    principal: 0,
    global: 4,
  });
});

test('releasing frees slots at every level and never goes below zero', async (t) => {
  const { limits, metrics } = make(t);
  await limits.acquireInflight('alice', 'u1', 2);
  await limits.acquireInflight('alice', 'u2', 1);
  await t.throwsAsync(limits.acquireInflight('alice', 'u1', 1));
  await limits.releaseInflight('alice', 'u1', 1);
  await limits.acquireInflight('alice', 'u1', 1);
  await limits.releaseInflight('alice', 'u1', 5); // more than it holds: frees its 2 only
  t.deepEqual((await limits.snapshot({ principal: 'alice', uploadId: 'u1' })).inflight, {
    upload: 0,
    principal: 1,
    global: 1,
  });
  t.is(await gauge(metrics, 'inflightChunks'), 1);
  await t.throwsAsync(limits.releaseInflight('alice', 'u1', 0), { instanceOf: RangeError });
});

test('concurrent acquires never overshoot a limit', async (t) => {
  const { limits } = make(t, { maxInflightPerUpload: 100, maxInflightPerPrincipal: 100, maxInflightGlobal: 7 });
  const results = await Promise.allSettled(
    Array.from({ length: 20 }, (_, i) => limits.acquireInflight(`p${i % 3}`, `u${i}`, 1)),
  );
  t.is(results.filter((r) => r.status === 'fulfilled').length, 7);
  t.is((await limits.snapshot()).inflight.global, 7);
});

test('the rate bucket refuses past the burst, per principal, and refills', async (t) => {
  const { limits, metrics } = make(t, { ratePerSecond: 20, burst: 3 });
  for (let i = 0; i < 3; i++) await limits.takeRequest('alice');
  const err = await t.throwsAsync(limits.takeRequest('alice'), { instanceOf: ApiError });
  t.true(isThrottled('principal_rate')(err));
  t.is(err?.headers['Retry-After'], '1');
  await limits.takeRequest('bob'); // another principal has its own bucket
  t.is(await throttledCount(metrics, 'principal_rate'), 1);
  t.is((await limits.snapshot({ principal: 'alice' })).rateTokens, 0);
  // 20/s = 2 tokens every 100 ms
  await until(async () => ((await limits.snapshot({ principal: 'alice' })).rateTokens ?? 0) >= 2, 1000);
  await limits.takeRequest('alice');
  await limits.takeRequest('alice');
});

test('bucketRefill keeps the rate exact with whole tokens at most every 100 ms', (t) => {
  for (const rate of [0.1, 0.5, 1, 3, 7, 10, 20, 33, 50, 99, 100, 250, 1000, 12345]) {
    const { amount, intervalMs } = bucketRefill(rate);
    t.true(Number.isInteger(amount) && amount >= 1, `amount for ${rate}`);
    t.true(intervalMs >= 100, `interval for ${rate}`);
    t.true(Math.abs((amount * 1000) / intervalMs - rate) / rate < 0.01, `rate for ${rate}`);
  }
});

test('a full task queue refuses with task_queue; tasks run at most `workers` at a time; gauges move', async (t) => {
  const { limits, metrics } = make(t);
  const gate = deferred();
  let running = 0;
  let peak = 0;
  const task = async () => {
    running++;
    peak = Math.max(peak, running);
    await gate.promise;
    running--;
    return 'done';
  };
  const accepted = Array.from({ length: 5 }, () => limits.runTask(task)); // 2 running + 3 waiting
  for (const p of accepted) p.catch(() => {});
  await until(() => running === 2);
  const err = await t.throwsAsync(limits.runTask(task), { instanceOf: ApiError });
  t.true(isThrottled('task_queue')(err));
  t.is(await throttledCount(metrics, 'task_queue'), 1);
  t.is(running, 2);
  t.is(await gauge(metrics, 'workerBusy'), 2);
  t.is(await gauge(metrics, 'taskQueueDepth'), 3);
  t.is(await gauge(metrics, 'workerCount'), 2);
  t.is((await metrics.taskQueueLimit.get()).values[0]?.value, 3);
  gate.resolve();
  t.deepEqual(await Promise.all(accepted), ['done', 'done', 'done', 'done', 'done']);
  t.is(peak, 2);
  t.is(await gauge(metrics, 'workerBusy'), 0);
  t.is(await gauge(metrics, 'taskQueueDepth'), 0);
});

test('setWorkers resizes the pool within [min, max]', async (t) => {
  const { limits, metrics } = make(t, { taskQueueSize: 20 });
  t.is(await limits.setWorkers(100), 4);
  t.is(await gauge(metrics, 'workerCount'), 4);
  let running = 0;
  let peak = 0;
  await Promise.all(
    Array.from({ length: 12 }, () =>
      limits.runTask(async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(15);
        running--;
      }),
    ),
  );
  t.is(peak, 4);
  t.is(await limits.setWorkers(0), 2);
  t.is((await limits.snapshot()).tasks.workers, 2);
});

test('a task whose caller aborts while it waits rejects with the reason and never runs', async (t) => {
  const { limits } = make(t, { minWorkers: 1 });
  const gate = deferred();
  const first = limits.runTask(() => gate.promise);
  await until(async () => (await limits.snapshot()).tasks.busy === 1);
  const controller = new AbortController();
  let ran = false;
  const second = limits.runTask(
    async () => {
      ran = true;
    },
    { signal: controller.signal },
  );
  controller.abort(new Error('client went away'));
  await t.throwsAsync(second, { message: 'client went away' });
  gate.resolve();
  await first;
  await until(async () => (await limits.snapshot()).tasks.waiting === 0);
  t.false(ran);
});

test('closing aborts running tasks and refuses new ones with shutting_down', async (t) => {
  const limits = new Limits({ ...base });
  const running = limits.runTask(
    (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
  );
  running.catch(() => {});
  await until(async () => (await limits.snapshot()).tasks.busy === 1);
  await limits.close();
  await t.throwsAsync(running, { instanceOf: ApiError, message: /shutting down/ });
  const err = await t.throwsAsync(
    limits.runTask(async () => 1),
    { instanceOf: ApiError },
  );
  t.is(err?.code, 'shutting_down');
});

test('the autoscale rule grows after 1 s of waiting, shrinks after 10 s idle, with a 2 s cooldown', (t) => {
  const rule = DEFAULT_AUTOSCALE;
  const s = { workers: 2, minWorkers: 2, maxWorkers: 4, waitingSince: null, idleSince: null, lastResize: 0 };
  t.is(nextWorkerCount({ ...s, waitingSince: 10_000 }, 10_900, rule), 2); // waiting < 1 s
  t.is(nextWorkerCount({ ...s, waitingSince: 10_000 }, 11_100, rule), 3);
  t.is(nextWorkerCount({ ...s, waitingSince: 10_000, lastResize: 10_000 }, 11_100, rule), 2); // cooldown
  t.is(nextWorkerCount({ ...s, workers: 4, waitingSince: 0 }, 60_000, rule), 4); // at max
  t.is(nextWorkerCount({ ...s, workers: 3, idleSince: 0 }, 9_000, rule), 3); // idle < 10 s
  t.is(nextWorkerCount({ ...s, workers: 3, idleSince: 0 }, 10_001, rule), 2);
  t.is(nextWorkerCount({ ...s, idleSince: 0 }, 60_000, rule), 2); // at min
});

test('the autoscale rule reads error rate, latency and utilisation', (t) => {
  const rule = DEFAULT_AUTOSCALE;
  const s = { workers: 3, minWorkers: 1, maxWorkers: 8, waitingSince: 0, idleSince: null, lastResize: 0 };
  t.is(nextWorkerCount(s, 5_000, rule), 4, 'waiting, all busy, healthy store: grow');
  t.is(nextWorkerCount({ ...s, busy: 2 }, 5_000, rule), 3, 'a worker is free: waiting is momentary, hold');
  t.is(nextWorkerCount({ ...s, errorRate: 0.1 }, 5_000, rule), 3, 'failing store: do not grow');
  t.is(nextWorkerCount({ ...s, errorRate: 0.3 }, 5_000, rule), 2, 'failing badly: shrink despite the queue');
  t.is(nextWorkerCount({ ...s, latencyMs: 400, bestLatencyMs: 100 }, 5_000, rule), 3, 'store slowing: hold');
  t.is(nextWorkerCount({ ...s, latencyMs: 250, bestLatencyMs: 100 }, 5_000, rule), 4, 'within 3× the best: grow');
  t.is(nextWorkerCount({ ...s, errorRate: 0.3, lastResize: 4_000 }, 5_000, rule), 3, 'cooldown holds shrinks too');
});

test('the pool grows under load and shrinks when the store fails and when load goes away', async (t) => {
  let now = 1_000_000;
  const pool = new TaskPool({
    queueSize: 100,
    minWorkers: 1,
    maxWorkers: 4,
    now: () => now,
    refuse: () => new Error('full'),
    autoscale: { tickMs: 60_000 },
  });
  t.teardown(() => pool.close());
  const sizes: number[] = [];
  const tick = async (ms: number) => {
    now += ms;
    await pool.autoscaleTick();
    sizes.push(pool.workers);
  };
  // Load up: 12 slow tasks queue behind one worker; each tick past the cooldown adds one.
  const gate = deferred();
  const load = Array.from({ length: 12 }, () => pool.run(() => gate.promise));
  for (const p of load) p.catch(() => {});
  for (let i = 0; i < 4; i++) {
    await until(() => pool.stats().busy === pool.workers); // Bottleneck starts tasks asynchronously
    await tick(2_100);
  }
  t.is(pool.workers, 4);
  gate.resolve();
  await Promise.all(load);
  // The store fails: 20 failing calls push the error rate over 20%, and the pool eases off.
  for (let i = 0; i < 20; i++) await pool.run(async () => Promise.reject(new Error('503 SlowDown'))).catch(() => {});
  await tick(2_100);
  t.is(pool.workers, 3);
  // Healthy again, then idle: it shrinks back to the minimum, one step per idle period.
  for (let i = 0; i < 20; i++) await pool.run(async () => 1);
  for (let i = 0; i < 3; i++) await tick(10_500);
  t.is(pool.workers, 1);
  t.log(`worker counts over time: ${sizes.join(' → ')}`);
});

test('the pool autoscales on its clock', async (t) => {
  let now = 1_000_000;
  const pool = new TaskPool({
    queueSize: 10,
    minWorkers: 1,
    maxWorkers: 3,
    now: () => now,
    refuse: () => new Error('full'),
    autoscale: { tickMs: 60_000 }, // ticks are driven by hand below
  });
  t.teardown(() => pool.close());
  const gate = deferred();
  const tasks = Array.from({ length: 4 }, () => pool.run(() => gate.promise));
  for (const p of tasks) p.catch(() => {});
  await until(() => pool.stats().busy === 1);
  t.like(pool.stats(), { workers: 1, busy: 1, waiting: 3 });
  now += 1500;
  await pool.autoscaleTick();
  t.is(pool.workers, 2);
  await until(() => pool.stats().busy === 2);
  t.like(pool.stats(), { busy: 2, waiting: 2 });
  now += 1000;
  await pool.autoscaleTick();
  t.is(pool.workers, 2); // cooldown
  now += 1500;
  await pool.autoscaleTick();
  t.is(pool.workers, 3);
  gate.resolve();
  await Promise.all(tasks);
  now += 10_500;
  await pool.autoscaleTick();
  t.is(pool.workers, 2);
  now += 5000;
  await pool.autoscaleTick();
  t.is(pool.workers, 2); // each shrink waits another full idle period
  now += 6000;
  await pool.autoscaleTick();
  t.is(pool.workers, 1);
});

test('bad options fail fast naming the value', (t) => {
  t.throws(() => new Limits({ ...base, minWorkers: 5, maxWorkers: 2 }), {
    message: /minWorkers \(5\).*maxWorkers \(2\)/,
  });
  t.throws(() => new Limits({ ...base, taskQueueSize: 0 }), { message: /taskQueueSize.*got 0/ });
  t.throws(() => new Limits({ ...base, ratePerSecond: -1 }), { message: /ratePerSecond.*got -1/ });
});
