import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { assertWithinQuota } from '../../server/uploads/quotas.ts';
import { runAdmin } from '../helpers/admin-cli.ts';
import { callApi, uploadFile } from '../helpers/api-client.ts';
import { startTestServer, type TestServer } from '../helpers/app.ts';

const MiB = 1024 * 1024;

/** Uploads the principal has in the database, and multipart uploads the disk store holds. */
async function state(srv: TestServer, principal: string) {
  const { rows } = await srv.tdb.pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM uploads WHERE principal = $1',
    [principal],
  );
  const dir = path.join(srv.config.dataDir, 'objects', 'multipart');
  const multipart = (await fs.readdir(dir).catch(() => [])).length;
  return { rows: rows[0]!.n, multipart };
}

const init = (srv: TestServer, key: string, fileSize: number) =>
  callApi(srv.url, 'POST', '/v1/uploads', key, { fileName: 'q.bin', fileSize, chunkSize: 5 * MiB });

test('concurrent-uploads quota holds under a burst of parallel inits, with no state left by the refused ones', async (t) => {
  const srv = await startTestServer({ env: { QUOTA_MAX_CONCURRENT_UPLOADS: '3' } });
  t.teardown(() => srv.close());
  const results = await Promise.all(Array.from({ length: 12 }, () => init(srv, srv.keys.alice, 1000)));
  const created = results.filter((r) => r.status === 201);
  const refused = results.filter((r) => r.status === 403);
  t.is(created.length, 3, 'exactly the quota is granted, whatever the interleaving');
  t.is(refused.length, 9);
  for (const r of refused) {
    t.is(r.body.error.code, 'quota_exceeded');
    t.is(r.body.error.quota, 'concurrent_uploads');
    t.is(r.body.error.limit, 3);
    t.is(r.body.error.current, 3);
  }
  t.deepEqual(await state(srv, 'alice'), { rows: 3, multipart: 3 }, 'refused inits left no row and no store upload');
  const metric = (await srv.metrics.registry.getSingleMetricAsString('quota_refusals_total')).split('\n').at(-1);
  t.is(metric, 'quota_refusals_total{quota="concurrent_uploads"} 9');
  // Another principal has a quota of its own.
  t.is((await init(srv, srv.keys.bob, 1000)).status, 201);
  // Ending an upload gives its place back.
  t.is((await callApi(srv.url, 'DELETE', `/v1/uploads/${created[0]!.body.uploadId}`, srv.keys.alice)).status, 204);
  t.is((await init(srv, srv.keys.alice, 1000)).status, 201);
  t.is((await init(srv, srv.keys.alice, 1000)).status, 403);
});

test('bytes-in-flight quota counts declared sizes of open uploads; usage is visible at /v1/usage', async (t) => {
  const srv = await startTestServer({ env: { QUOTA_MAX_BYTES_IN_FLIGHT: String(10 * MiB) } });
  t.teardown(() => srv.close());
  const first = await init(srv, srv.keys.alice, 6 * MiB);
  t.is(first.status, 201);
  const second = await init(srv, srv.keys.alice, 6 * MiB);
  t.is(second.status, 403);
  t.like(second.body.error, {
    code: 'quota_exceeded',
    quota: 'bytes_in_flight',
    limit: 10 * MiB,
    current: 6 * MiB,
    requested: 6 * MiB,
  });
  t.is((await init(srv, srv.keys.alice, 4 * MiB)).status, 201, 'what fits is still accepted');
  const usage = await callApi(srv.url, 'GET', '/v1/usage', srv.keys.alice);
  t.is(usage.status, 200);
  t.deepEqual(usage.body, {
    quota: { maxConcurrentUploads: null, maxBytesInFlight: 10 * MiB, maxTotalBytes: null },
    usage: { concurrentUploads: 2, bytesInFlight: 10 * MiB, totalBytes: 10 * MiB },
  });
  t.deepEqual(await state(srv, 'alice'), { rows: 2, multipart: 2 });
});

test('a per-principal total-bytes override (admin endpoint) binds that principal only, completed files included', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const { key: adminKey } = await srv.app.repos.apiKeys.create('ops', { admin: true });
  const set = await callApi(srv.url, 'PUT', '/v1/admin/principals/alice/quota', adminKey, { maxTotalBytes: 1500 });
  t.is(set.status, 200);
  t.is(set.body.quota.maxTotalBytes, 1500);
  await uploadFile(srv.url, srv.keys.alice, Buffer.alloc(1000, 1));
  const over = await init(srv, srv.keys.alice, 600);
  t.is(over.status, 403);
  t.like(over.body.error, { quota: 'total_bytes', limit: 1500, current: 1000, requested: 600 });
  t.is((await init(srv, srv.keys.alice, 500)).status, 201);
  t.is((await init(srv, srv.keys.bob, 600)).status, 201, 'bob has no override');
  // Back to the default (unlimited) with null; recorded in the audit log.
  t.is(
    (await callApi(srv.url, 'PUT', '/v1/admin/principals/alice/quota', adminKey, { maxTotalBytes: null })).status,
    200,
  );
  t.is((await init(srv, srv.keys.alice, 600)).status, 201);
  const audit = await srv.app.repos.audit.list({ principal: 'alice', limit: 100 });
  t.is(audit.items.filter((r) => r.action === 'quota.set').length, 2);
  // A tenant cannot change its own quota: the admin surface does not exist for it.
  const self = await callApi(srv.url, 'PUT', '/v1/admin/principals/alice/quota', srv.keys.alice, { maxTotalBytes: 0 });
  t.is(self.status, 404);
});

test('assertWithinQuota: each limit refuses exactly when current + request passes it', (t) => {
  const none = { maxConcurrentUploads: null, maxBytesInFlight: null, maxTotalBytes: null };
  const used = { concurrentUploads: 2, bytesInFlight: 100, totalBytes: 1000 };
  t.notThrows(() => assertWithinQuota(none, used, Number.MAX_SAFE_INTEGER));
  t.notThrows(() => assertWithinQuota({ ...none, maxConcurrentUploads: 3 }, used, 1));
  t.throws(() => assertWithinQuota({ ...none, maxConcurrentUploads: 2 }, used, 1), { message: /concurrent_uploads/ });
  t.notThrows(() => assertWithinQuota({ ...none, maxBytesInFlight: 150 }, used, 50));
  t.throws(() => assertWithinQuota({ ...none, maxBytesInFlight: 150 }, used, 51), { message: /bytes_in_flight/ });
  t.notThrows(() => assertWithinQuota({ ...none, maxTotalBytes: 1050 }, used, 50));
  t.throws(() => assertWithinQuota({ ...none, maxTotalBytes: 1050 }, used, 51), { message: /total_bytes/ });
});

test('`admin quota set|show` sets and clears overrides, and reports usage', async (t) => {
  const env = { QUOTA_MAX_CONCURRENT_UPLOADS: '5' };
  const srv = await startTestServer({ env });
  t.teardown(() => srv.close());
  const set = await runAdmin(
    srv,
    ['quota', 'set', 'alice', '--max-concurrent-uploads', '1', '--max-total-bytes', '0'],
    env,
  );
  t.is(set.code, 0, set.stderr);
  t.deepEqual(JSON.parse(set.stdout), {
    principal: 'alice',
    quota: { maxConcurrentUploads: 1, maxBytesInFlight: null, maxTotalBytes: null },
    usage: { concurrentUploads: 0, bytesInFlight: 0, totalBytes: 0 },
  });
  t.is((await init(srv, srv.keys.alice, 100)).status, 201);
  t.is((await init(srv, srv.keys.alice, 100)).status, 403);
  t.is((await init(srv, srv.keys.bob, 100)).status, 201, 'bob keeps the default of 5');
  const cleared = await runAdmin(srv, ['quota', 'set', 'alice', '--max-concurrent-uploads', 'default'], env);
  t.is(cleared.code, 0, cleared.stderr);
  t.like(JSON.parse(cleared.stdout), { quota: { maxConcurrentUploads: 5 }, usage: { concurrentUploads: 1 } });
  t.is((await init(srv, srv.keys.alice, 100)).status, 201);
  const show = await runAdmin(srv, ['quota', 'show', 'alice'], env);
  t.like(JSON.parse(show.stdout), { usage: { concurrentUploads: 2, bytesInFlight: 200 } });
  const bad = await runAdmin(srv, ['quota', 'set', 'alice', '--max-total-bytes=-1'], env);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--max-total-bytes must be a whole number/);
  const audit = await srv.app.repos.audit.list({ principal: 'alice', limit: 10 });
  t.deepEqual(
    audit.items.filter((r) => r.action === 'quota.set').map((r) => r.details),
    [{ maxConcurrentUploads: null }, { maxConcurrentUploads: 1, maxTotalBytes: 0 }],
  );
});
