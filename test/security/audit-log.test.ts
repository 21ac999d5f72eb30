import { randomBytes } from 'node:crypto';
import test from 'ava';
import { callApi, initUpload, sendChunks } from '../helpers/api-client.ts';
import { s3Configured, startTestServer } from '../helpers/app.ts';

const MiB = 1024 * 1024;

for (const store of s3Configured() ? (['disk', 's3'] as const) : (['disk'] as const)) {
  test(`[${store}] every action lands in the audit log with principal, upload, bytes, address, request id and time`, async (t) => {
    const srv = await startTestServer({ store });
    t.teardown(() => srv.close());
    const { key: adminKey } = await srv.app.repos.apiKeys.create('auditor', { admin: true });
    const key = srv.keys.alice;
    const rid = (n: string) => ({ 'x-request-id': `audit-test-${n}` });
    const started = new Date(Date.now() - 1000);

    const file = randomBytes(11 * MiB);
    const u = await initUpload(srv.url, key, file);
    // Two presign batches: 2 chunks, then 1; one audit row each.
    await sendChunks(srv.url, key, u, file, [0, 1]);
    await sendChunks(srv.url, key, u, file, [2]);
    t.is((await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/complete`, key, undefined, rid('c'))).status, 200);
    t.is((await callApi(srv.url, 'GET', `/v1/files/${u.uploadId}`, key, undefined, rid('m'))).status, 200);
    const stream = await fetch(`${srv.url}/v1/files/${u.uploadId}/content`, {
      headers: { authorization: `Bearer ${key}`, range: 'bytes=10-1033', ...rid('d') },
    });
    t.is(stream.status, 206);
    await stream.arrayBuffer();
    const other = await initUpload(srv.url, key, Buffer.alloc(10));
    t.is((await callApi(srv.url, 'DELETE', `/v1/uploads/${other.uploadId}`, key, undefined, rid('a'))).status, 204);
    // Bob's actions are his own; refused requests leave no row.
    await initUpload(srv.url, srv.keys.bob, Buffer.alloc(10));
    t.is((await callApi(srv.url, 'GET', `/v1/files/${other.uploadId}`, key)).status, 404);

    const res = await callApi(srv.url, 'GET', '/v1/admin/audit?principal=alice&limit=50', adminKey);
    t.is(res.status, 200);
    const entries = [...res.body.entries].reverse();
    t.deepEqual(
      entries.map((e: { action: string }) => e.action),
      [
        'upload.init',
        'chunks.presign',
        'chunks.presign',
        'upload.complete',
        'file.manifest',
        'file.download',
        'upload.init',
        'upload.abort',
      ],
    );
    const [init, presign1, presign2, complete, manifest, download, , abort] = entries;
    t.like(init, { principal: 'alice', uploadId: u.uploadId, bytes: file.length, chunks: 3 });
    t.like(presign1, { uploadId: u.uploadId, chunks: 2, bytes: 10 * MiB, details: { chunkIndexes: '0-1' } });
    t.like(presign2, { uploadId: u.uploadId, chunks: 1, bytes: 1 * MiB, details: { chunkIndexes: '2' } });
    t.like(complete, { uploadId: u.uploadId, bytes: file.length, requestId: 'audit-test-c' });
    t.like(manifest, { uploadId: u.uploadId, bytes: file.length, chunks: 3, requestId: 'audit-test-m' });
    t.like(download, { uploadId: u.uploadId, bytes: 1024, requestId: 'audit-test-d', details: { range: '10-1033' } });
    t.like(abort, { uploadId: other.uploadId, requestId: 'audit-test-a' });
    for (const e of entries) {
      t.is(e.clientAddress, '127.0.0.1');
      t.true(new Date(e.at) >= started && new Date(e.at) <= new Date());
      t.truthy(e.requestId);
    }
    t.false(JSON.stringify(res.body).includes('X-Amz-Signature'), 'no presigned URL is recorded');

    // Filters: by time, and pagination.
    const mid = entries[3].at;
    const after = await callApi(srv.url, 'GET', `/v1/admin/audit?principal=alice&since=${mid}`, adminKey);
    t.true(after.body.entries.every((e: { at: string }) => e.at >= mid));
    t.true(after.body.entries.length >= 5 && after.body.entries.length < entries.length);
    const before = await callApi(srv.url, 'GET', `/v1/admin/audit?principal=alice&until=${mid}`, adminKey);
    t.is(before.body.entries.length + after.body.entries.length, entries.length);
    const pages: unknown[] = [];
    let cursor = '';
    for (let i = 0; i < 10; i++) {
      const page = await callApi(srv.url, 'GET', `/v1/admin/audit?principal=alice&limit=3${cursor}`, adminKey);
      pages.push(...page.body.entries);
      if (!page.body.nextCursor) break;
      cursor = `&cursor=${page.body.nextCursor}`;
    }
    t.deepEqual(pages, res.body.entries, 'pages add up to the whole list');
    const bob = await callApi(srv.url, 'GET', '/v1/admin/audit?principal=bob', adminKey);
    t.deepEqual(
      bob.body.entries.map((e: { action: string }) => e.action),
      ['upload.init'],
    );
    const bad = await callApi(srv.url, 'GET', '/v1/admin/audit?since=yesterday', adminKey);
    t.is(bad.status, 400);
    t.is((await callApi(srv.url, 'GET', '/v1/admin/audit?cursor=bm9wZQ', adminKey)).status, 400);
  });
}

test('the audit log is append-only in the database: UPDATE, DELETE and TRUNCATE are refused', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  await initUpload(srv.url, srv.keys.alice, Buffer.alloc(10));
  const { rows } = await srv.tdb.pool.query('SELECT id FROM audit_log');
  t.is(rows.length, 1);
  for (const sql of ["UPDATE audit_log SET principal = 'mallory'", 'DELETE FROM audit_log', 'TRUNCATE audit_log']) {
    const err = await t.throwsAsync(srv.tdb.pool.query(sql));
    t.regex(err!.message, /append-only/, sql);
  }
  const { rows: after } = await srv.tdb.pool.query('SELECT principal FROM audit_log');
  t.deepEqual(after, [{ principal: 'alice' }]);
});

test('GET /v1/openapi.json documents the admin and usage endpoints and the encryption option', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const doc = (await (await fetch(`${srv.url}/v1/openapi.json`)).json()) as {
    paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>>;
  };
  for (const p of ['/v1/admin/audit', '/v1/admin/keys', '/v1/admin/keys/{id}', '/v1/usage']) t.truthy(doc.paths[p], p);
  t.deepEqual(doc.paths['/v1/admin/audit']!.get!.parameters!.map((p) => p.name).sort(), [
    'cursor',
    'limit',
    'principal',
    'since',
    'until',
  ]);
  t.true(JSON.stringify(doc.paths['/v1/uploads']!.post).includes('SSE-KMS'));
});
