import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { Redis } from 'ioredis';
import { ApiError } from '../../server/http/errors.ts';
import { Limits, type LimitsOptions } from '../../server/uploads/limits.ts';
import { redisReachable, registerRedisUnavailable, TEST_REDIS_URL } from '../helpers/redis.ts';

const REDIS_URL = TEST_REDIS_URL;
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'limits-replica.ts');

const base: LimitsOptions = {
  maxInflightPerUpload: 10,
  maxInflightPerPrincipal: 3,
  maxInflightGlobal: 5,
  taskQueueSize: 2,
  minWorkers: 1,
  maxWorkers: 1,
  autoscale: false,
  redisUrl: REDIS_URL,
};

/** A fresh key prefix per test; every key under it is deleted when the test ends. */
function scope(t: ExecutionContext) {
  const keyPrefix = `conveyor-test-${randomUUID()}`;
  const open: Limits[] = [];
  const make = (options: Partial<LimitsOptions> = {}) => {
    const limits = new Limits({ ...base, keyPrefix, ...options });
    open.push(limits);
    return limits;
  };
  const redis = new Redis(REDIS_URL);
  t.teardown(async () => {
    await Promise.all(open.map((l) => l.close().catch(() => {})));
    for (const pattern of [`{${keyPrefix}}:*`, `b_${keyPrefix}-*`]) {
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(...keys);
    }
    redis.disconnect();
  });
  return { keyPrefix, make, redis };
}

async function limitOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    if (err instanceof ApiError && err.code === 'throttled' && err.headers['Retry-After']) {
      return String(err.details.limit);
    }
    throw err;
  }
}

if (!(await redisReachable(REDIS_URL))) {
  registerRedisUnavailable(test, 'Redis-backed limits');
} else {
  test('two instances on one Redis share the per-principal and global limits', async (t) => {
    const { make } = scope(t);
    const a = make();
    const b = make();
    t.is(a.mode, 'redis');
    await a.acquireInflight('alice', 'u1', 2);
    await b.acquireInflight('alice', 'u2', 1);
    t.is(await limitOf(b.acquireInflight('alice', 'u3', 1)), 'principal_inflight');
    t.is(await limitOf(a.acquireInflight('alice', 'u3', 1)), 'principal_inflight');
    await a.acquireInflight('bob', 'u4', 2);
    t.is(await limitOf(b.acquireInflight('carol', 'u5', 1)), 'global_inflight');
    // A refused reservation took nothing anywhere.
    t.deepEqual((await a.snapshot({ principal: 'carol', uploadId: 'u5' })).inflight, {
      upload: 0,
      principal: 0,
      global: 5,
    });
    // Slots taken on one replica are freed on another (the chunk is reported wherever it lands).
    await b.releaseInflight('alice', 'u1', 2);
    t.deepEqual((await a.snapshot({ principal: 'alice', uploadId: 'u1' })).inflight, {
      upload: 0,
      principal: 1,
      global: 3,
    });
    await a.acquireInflight('carol', 'u5', 2);
    t.is(await limitOf(b.acquireInflight('dave', 'u6', 1)), 'global_inflight');
  });

  test('the per-upload limit and all-or-nothing hold in Redis', async (t) => {
    const { make } = scope(t);
    const a = make({ maxInflightPerUpload: 3, maxInflightPerPrincipal: 4 });
    await a.acquireInflight('alice', 'u1', 3);
    t.is(await limitOf(a.acquireInflight('alice', 'u1', 1)), 'upload_inflight');
    // Fits u2's own limit (3) but not alice's (4): nothing may stay taken for u2.
    t.is(await limitOf(a.acquireInflight('alice', 'u2', 2)), 'principal_inflight');
    t.deepEqual((await a.snapshot({ principal: 'alice', uploadId: 'u2' })).inflight, {
      upload: 0,
      principal: 3,
      global: 3,
    });
  });

  test('the rate bucket of a principal is shared by the instances', async (t) => {
    const { make } = scope(t);
    const a = make({ ratePerSecond: 1, burst: 4 });
    const b = make({ ratePerSecond: 1, burst: 4 });
    await a.takeRequest('alice');
    await b.takeRequest('alice');
    await a.takeRequest('alice');
    await b.takeRequest('alice');
    t.is(await limitOf(a.takeRequest('alice')), 'principal_rate');
    t.is(await limitOf(b.takeRequest('alice')), 'principal_rate');
    await b.takeRequest('bob');
    t.is((await a.snapshot({ principal: 'alice' })).rateTokens, 0);
    await sleep(1100); // one token a second
    await b.takeRequest('alice');
    t.is(await limitOf(a.takeRequest('alice')), 'principal_rate');
  });

  test('slots held by an instance closed without releasing expire with their lease', async (t) => {
    const { make } = scope(t);
    let now = Date.now();
    const clock = () => now;
    const dying = make({ now: clock });
    await dying.acquireInflight('alice', 'u1', 2);
    await dying.acquireInflight('bob', 'u2', 3);
    await dying.close(); // a replica that vanished: no release ever comes
    const survivor = make({ now: clock });
    t.is(await limitOf(survivor.acquireInflight('carol', 'u3', 1)), 'global_inflight');
    now += (survivor.leaseTtlSeconds - 1) * 1000;
    t.is((await survivor.snapshot()).inflight.global, 5);
    now += 2000;
    t.deepEqual((await survivor.snapshot({ principal: 'alice', uploadId: 'u1' })).inflight, {
      upload: 0,
      principal: 0,
      global: 0,
    });
    await survivor.acquireInflight('carol', 'u3', 3);
  });

  test('on the real clock a short lease frees its slot and its keys', async (t) => {
    const { make, redis, keyPrefix } = scope(t);
    const dying = make();
    await dying.acquireInflight('alice', 'u1', 2, { ttlSeconds: 0.3 });
    await dying.close();
    const globalKey = `{${keyPrefix}}:inflight:g`;
    const ttl = await redis.pttl(globalKey);
    t.true(ttl > 0 && ttl <= 300, `PTTL ${ttl}`);
    await sleep(400);
    t.is(await redis.exists(globalKey, `{${keyPrefix}}:inflight:u:u1`, `{${keyPrefix}}:inflight:p:alice`), 0);
    const survivor = make();
    t.is((await survivor.snapshot()).inflight.global, 0);
    await survivor.acquireInflight('bob', 'u2', 3);
  });

  test('two OS processes share the global limit through Redis', async (t) => {
    const { keyPrefix, make } = scope(t);
    const attempts = 6;
    const globalLimit = 5;
    const replicas = ['r1', 'r2'].map((name) => {
      const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
        env: {
          ...process.env,
          REPLICA: name,
          ATTEMPTS: String(attempts),
          GLOBAL_LIMIT: String(globalLimit),
          REDIS_URL,
          KEY_PREFIX: keyPrefix,
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      t.teardown(() => {
        if (child.exitCode === null) child.kill();
      });
      const lines = readline.createInterface({ input: child.stdout });
      const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      return { child, next, exited };
    });
    const ready = await Promise.all(replicas.map((r) => r.next()));
    t.deepEqual(ready, ['ready', 'ready']);
    const outputs = replicas.map((r) => r.next());
    for (const r of replicas) r.child.stdin.end('go\n');
    const results = (await Promise.all(outputs)).map(
      (line) => JSON.parse(line) as { granted: number; refused: Record<string, number> },
    );
    t.deepEqual(await Promise.all(replicas.map((r) => r.exited)), [0, 0]);
    t.log(results);
    t.is(results[0]!.granted + results[1]!.granted, globalLimit);
    t.is(
      (results[0]!.refused.global_inflight ?? 0) + (results[1]!.refused.global_inflight ?? 0),
      2 * attempts - globalLimit,
    );
    const observer = make();
    t.is((await observer.snapshot()).inflight.global, globalLimit);
  });
}
