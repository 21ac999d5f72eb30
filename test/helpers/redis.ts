import net from 'node:net';
import type test from 'ava';

/** The Redis the tests use: TEST_REDIS_URL, or the machine's own. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function redisReachable(url = TEST_REDIS_URL): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379), timeout: 1000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/**
 * Stands in for a file's Redis tests when no Redis is reachable (a developer machine
 * without one). It says so in the output, and fails where Redis is required
 * (`.ci/run` sets CONVEYOR_REQUIRE_REDIS=1), so CI never passes with them unrun.
 */
export function registerRedisUnavailable(t: typeof test, what: string): void {
  t(`${what}: Redis not reachable at ${TEST_REDIS_URL}`, (tt) => {
    if (process.env.CONVEYOR_REQUIRE_REDIS === '1') tt.fail('CONVEYOR_REQUIRE_REDIS=1 but Redis is not reachable');
    else tt.log('Redis-mode tests did not run');
    tt.pass();
  });
}
