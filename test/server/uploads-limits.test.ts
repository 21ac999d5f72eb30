import { randomBytes } from 'node:crypto';
import test from 'ava';
import { startTestServer, type TestServer } from '../helpers/app.ts';
import { redisReachable, registerRedisUnavailable, TEST_REDIS_URL } from '../helpers/redis.ts';

const MiB = 1024 * 1024;

async function api(srv: TestServer, method: string, path: string, body?: unknown) {
  const res = await fetch(`${srv.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${srv.keys.alice}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

async function newUpload(srv: TestServer, chunks: number) {
  const res = await api(srv, 'POST', '/v1/uploads', { fileName: 'f', fileSize: chunks * 5 * MiB, chunkSize: 5 * MiB });
  return res.body.uploadId as string;
}

const presign = (srv: TestServer, uploadId: string, indexes: number[]) =>
  api(srv, 'POST', `/v1/uploads/${uploadId}/chunks/presign`, { chunks: indexes.map((chunkIndex) => ({ chunkIndex })) });

const shared = (await redisReachable()) ? test : null;
if (!shared) registerRedisUnavailable(test, 'two coordinators sharing Redis');

shared?.('two coordinators sharing Redis enforce one per-principal inflight limit', async (t) => {
  const env = {
    REDIS_URL: TEST_REDIS_URL,
    REDIS_KEY_PREFIX: `test-${randomBytes(6).toString('hex')}`,
    MAX_INFLIGHT_PER_PRINCIPAL: '5',
  };
  const [a, b] = await Promise.all([startTestServer({ env }), startTestServer({ env })]);
  t.teardown(() => Promise.all([a.close(), b.close()]).then(() => {}));
  const [ua, ub] = [await newUpload(a, 4), await newUpload(b, 4)];
  t.is((await presign(a, ua, [0, 1, 2])).status, 200);
  const refused = await presign(b, ub, [0, 1, 2]);
  t.is(refused.status, 429, 'the slots held through coordinator A count on coordinator B');
  t.is(refused.body.error.limit, 'principal_inflight');
  t.truthy(refused.headers.get('retry-after'));
  t.is((await presign(b, ub, [0, 1])).status, 200, 'what is left of the shared limit is usable');
  t.is((await api(a, 'DELETE', `/v1/uploads/${ua}`)).status, 204);
  t.is((await presign(b, ub, [2, 3])).status, 200, 'aborting on A gave its slots back to B');
});

test('without Redis the limit is per process; lapsed leases are given back by the sweeper', async (t) => {
  const srv = await startTestServer({ env: { MAX_INFLIGHT_PER_PRINCIPAL: '2' } });
  t.teardown(() => srv.close());
  const u = await newUpload(srv, 3);
  t.is((await presign(srv, u, [0, 1])).status, 200);
  t.is((await presign(srv, u, [2])).status, 429);
  // The client vanished: its leases lapse (moved into the past here rather than waiting 15 minutes).
  await srv.tdb.pool.query(`UPDATE chunks SET lease_expires_at = now() - interval '1 second' WHERE upload_id = $1`, [
    u,
  ]);
  t.true(await srv.app.sweeper.runOnce());
  t.is((await presign(srv, u, [2])).status, 200, 'the sweep freed the lapsed slots');
  const { rows } = await srv.tdb.pool.query(`SELECT chunk_index, status FROM chunks WHERE upload_id = $1 ORDER BY 1`, [
    u,
  ]);
  t.deepEqual(
    rows.map((r) => r.status),
    ['PENDING', 'PENDING', 'PRESIGNED'],
  );
});

test('the per-principal request rate bucket answers 429 principal_rate', async (t) => {
  const srv = await startTestServer({ env: { RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '3' } });
  t.teardown(() => srv.close());
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await api(srv, 'GET', '/v1/uploads')).status);
  t.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
  const refused = await api(srv, 'GET', '/v1/uploads');
  t.is(refused.status, 429);
  t.is(refused.body.error.limit, 'principal_rate');
  t.truthy(refused.headers.get('retry-after'));
  const other = await fetch(`${srv.url}/v1/uploads`, { headers: { authorization: `Bearer ${srv.keys.bob}` } });
  t.is(other.status, 200, 'another principal has its own bucket');
});

test('the sweeper runs on one coordinator at a time (advisory lock)', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const other = await srv.tdb.pool.connect();
  t.teardown(() => other.release());
  // Another coordinator is sweeping: it holds the sweep lock on its own connection.
  await other.query('SELECT pg_advisory_lock(7263310002)');
  t.false(await srv.app.sweeper.runOnce(), 'skipped while another holds the lock');
  await other.query('SELECT pg_advisory_unlock(7263310002)');
  t.true(await srv.app.sweeper.runOnce());
});
