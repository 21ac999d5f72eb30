import test from 'ava';
import { AdaptiveConcurrency } from '../../client-sdk/concurrency.ts';
import { WorkPool } from '../../client-sdk/pool.ts';

/** Drives the controller with a fake link: `rate(level)` bytes per second at each level. */
function drive(c: AdaptiveConcurrency, clock: { now: number }, rate: (level: number) => number, seconds: number) {
  const levels: number[] = [];
  for (let s = 0; s < seconds; s++) {
    c.recordBytes(rate(c.current));
    clock.now += 1000;
    c.tick(true);
    levels.push(c.current);
  }
  return levels;
}

const setup = (opts = {}) => {
  const clock = { now: 1_000_000 };
  const c = new AdaptiveConcurrency(
    { initial: 2, min: 1, max: 16, settleSamples: 0, reprobeSamples: 1000, ...opts },
    'node',
    () => clock.now,
  );
  return { c, clock };
};

test('grows while throughput grows and settles at the knee of the curve', (t) => {
  const { c, clock } = setup();
  // Linear up to 6 parallel requests, flat after: the best level is 6 or one probe above it.
  const levels = drive(c, clock, (n) => Math.min(n, 6) * 10e6, 30);
  t.true(c.current >= 6 && c.current <= 7, `settled at ${c.current}: ${levels.join(',')}`);
  t.deepEqual(levels.slice(-10), Array(10).fill(c.current), 'no oscillation once settled');
  t.true(c.snapshot().changes.some((ch) => ch.reason === 'probe'));
});

test('backs off when a higher level is slower (congestion), then holds', (t) => {
  const { c, clock } = setup();
  const levels = drive(c, clock, (n) => (n <= 4 ? n * 10e6 : 40e6 - (n - 4) * 8e6), 30);
  t.is(c.current, 4, levels.join(','));
  t.deepEqual(levels.slice(-10), Array(10).fill(4));
});

test('a throttle halves, blocks for Retry-After, and growth resumes only after the cooldown', (t) => {
  const { c, clock } = setup({ initial: 8, cooldownMs: 3000 });
  const change = c.onThrottle(2000);
  t.like(change, { from: 8, to: 4, reason: 'throttle' });
  t.is(c.blockedUntil, clock.now + 2000);
  t.is(c.onThrottle(2000), undefined, 'the same burst of 429s cuts once');
  const levels = drive(c, clock, (n) => n * 10e6, 8);
  t.is(levels[0], 4, 'blocked');
  t.is(levels[2], 4, 'cooling down');
  t.true(c.current > 4, `recovers after the cooldown: ${levels.join(',')}`);
  t.true(
    levels.every((l, i) => i === 0 || l - levels[i - 1]! <= 1),
    'one step at a time',
  );
});

test('a timeout cuts by a quarter; limits hold; min/max/current are visible', (t) => {
  const { c } = setup({ initial: 8 });
  t.like(c.onTimeout(), { from: 8, to: 6, reason: 'timeout' });
  const { c: low } = setup({ initial: 1 });
  t.is(low.onThrottle(1000), undefined, 'never below min');
  t.is(low.current, 1);
  t.like(c.snapshot(), { current: 6, min: 1, max: 16, adaptive: true });
  t.throws(() => new AdaptiveConcurrency({ min: 4, max: 2 }), { message: /max must be an integer ≥ min \(4\), got 2/ });
});

test('adaptive: false keeps the level', (t) => {
  const { c, clock } = setup({ adaptive: false, initial: 3 });
  drive(c, clock, (n) => n * 10e6, 10);
  t.is(c.current, 3);
});

test('the pool never runs more than the level, requeues retries without holding a slot, pauses and resumes', async (t) => {
  const c = new AdaptiveConcurrency({ initial: 3, adaptive: false });
  let running = 0;
  let peak = 0;
  const tries = new Map<number, number>();
  const pool = new WorkPool<number>({
    concurrency: c,
    compare: (a, b) => a - b,
    run: async (i, signal) => {
      running++;
      peak = Math.max(peak, running);
      try {
        await new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, 10);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new Error('aborted'));
          });
        });
      } finally {
        running--;
      }
      const n = (tries.get(i) ?? 0) + 1;
      tries.set(i, n);
      return i % 5 === 0 && n < 3 ? { retryInMs: 5 } : undefined;
    },
  });
  for (let i = 0; i < 20; i++) pool.add(i);
  const done = pool.run();
  await new Promise((r) => setTimeout(r, 15));
  pool.pause();
  const pausedAt = [...tries.values()].reduce((a, b) => a + b, 0);
  await new Promise((r) => setTimeout(r, 50));
  t.is(
    [...tries.values()].reduce((a, b) => a + b, 0),
    pausedAt,
    'nothing ran while paused',
  );
  pool.resume();
  await done;
  t.is(peak, 3);
  t.is(tries.size, 20);
  t.is(tries.get(5), 3, 'retried twice');
});

test('a fatal error rejects the pool and aborts the others', async (t) => {
  const c = new AdaptiveConcurrency({ initial: 4, adaptive: false });
  const aborted: number[] = [];
  const pool = new WorkPool<number>({
    concurrency: c,
    compare: (a, b) => a - b,
    run: (i, signal) =>
      new Promise((resolve, reject) => {
        if (i === 2) return setTimeout(() => reject(new Error('fatal 2')), 5);
        signal.addEventListener('abort', () => {
          aborted.push(i);
          reject(signal.reason);
        });
        setTimeout(() => resolve(undefined), 1000);
      }),
  });
  for (let i = 0; i < 8; i++) pool.add(i);
  await t.throwsAsync(pool.run(), { message: 'fatal 2' });
  t.deepEqual(aborted.sort(), [0, 1, 3]);
});
