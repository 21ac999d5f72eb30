import { randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { isObjectStoreError } from '../../server/storage/errors.ts';
import { S3ObjectStore } from '../../server/storage/s3-object-store.ts';
import { callApi, initUpload, sendChunks as sendChunksVia } from '../helpers/api-client.ts';
import { s3Configured, startTestServer, type TestServer } from '../helpers/app.ts';
import { readAll, sha256Base64 } from '../storage/object-store-http.ts';

const MiB = 1024 * 1024;

/** The upload protocol end to end, with parts PUT by plain fetch to the presigned URLs. */
for (const store of s3Configured() ? (['disk', 's3'] as const) : (['disk'] as const)) {
  let srv: TestServer;
  const title = (s: string) => `[${store}] ${s}`;

  test.before(async () => {
    srv = await startTestServer({ store, env: { MAX_INFLIGHT_PER_UPLOAD: '4' } });
  });
  test.after.always(() => srv?.close());

  const api = (method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) =>
    callApi(srv.url, method, path, key, body, headers);
  const init = (file: Buffer, extra: Record<string, unknown> = {}) => initUpload(srv.url, srv.keys.alice, file, extra);
  const sendChunks = (uploadId: string, file: Buffer, chunkSize: number, indexes: number[], report = true) =>
    sendChunksVia(srv.url, srv.keys.alice, { uploadId, chunkSize }, file, indexes, { report });

  test.serial(title('full lifecycle: the stored object is byte-identical and COMPLETED'), async (t) => {
    const file = randomBytes(12 * MiB + 123);
    const u = await init(file, { checksumSha256: sha256Base64(file), contentType: 'application/x-test' });
    t.is(u.totalChunks, 3);
    await sendChunks(u.uploadId, file, u.chunkSize, [0, 1, 2]);
    const done = await api('POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice, {});
    t.is(done.status, 200, JSON.stringify(done.body));
    t.like(done.body, { uploadId: u.uploadId, status: 'COMPLETED', size: file.length, fileId: u.uploadId });
    const row = await srv.app.repos.uploads.get(u.uploadId, 'alice');
    t.is(row?.status, 'COMPLETED');
    const { body } = await srv.store.getObject({ key: row!.objectKey });
    t.true((await readAll(body)).equals(file), 'byte-identical');
    const status = await api('GET', `/v1/uploads/${u.uploadId}`, srv.keys.alice);
    t.like(status.body, {
      status: 'COMPLETED',
      uploadedChunks: 3,
      missingChunks: [],
      fileId: u.uploadId,
      etag: done.body.etag,
    });
  });

  test.serial(title('resume: chunks uploaded but never reported count, unsent ones are missing'), async (t) => {
    const file = randomBytes(16 * MiB);
    const u = await init(file);
    t.is(u.totalChunks, 4);
    await sendChunks(u.uploadId, file, u.chunkSize, [0], true);
    await sendChunks(u.uploadId, file, u.chunkSize, [2], false);
    const status = await api('GET', `/v1/uploads/${u.uploadId}`, srv.keys.alice);
    t.is(status.status, 200);
    t.like(status.body, { status: 'IN_PROGRESS', uploadedChunks: 2 });
    t.deepEqual(status.body.missingChunks, [1, 3]);
    const early = await api('POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice);
    t.is(early.status, 409);
    t.is(early.body.error.code, 'missing_chunks');
    t.deepEqual(early.body.error.missingChunks, [1, 3]);
    await sendChunks(u.uploadId, file, u.chunkSize, [1, 3]);
    t.is((await api('POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice)).status, 200);
  });

  test.serial(title('20 concurrent completes: one store completion, 20 identical answers'), async (t) => {
    const file = randomBytes(6 * MiB);
    const u = await init(file);
    await sendChunks(u.uploadId, file, u.chunkSize, [0, 1]);
    let completions = 0;
    const real = srv.store.completeMultipartUpload.bind(srv.store);
    srv.store.completeMultipartUpload = (...args) => {
      completions++;
      return real(...args);
    };
    t.teardown(() => {
      srv.store.completeMultipartUpload = real;
    });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => api('POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice)),
    );
    t.deepEqual(new Set(answers.map((a) => a.status)), new Set([200]));
    t.is(new Set(answers.map((a) => JSON.stringify(a.body))).size, 1, 'every racer gets the same body');
    t.is(completions, 1, 'exactly one CompleteMultipartUpload');
  });

  test.serial(title("another principal gets 404 on every endpoint for someone else's upload"), async (t) => {
    const file = randomBytes(1000);
    const u = await init(file);
    const path = `/v1/uploads/${u.uploadId}`;
    for (const [method, p, body] of [
      ['GET', path, undefined],
      ['POST', `${path}/chunks/presign`, { chunks: [{ chunkIndex: 0 }] }],
      ['PATCH', `${path}/chunks/0`, { etag: '"x"', size: 1000 }],
      ['POST', `${path}/complete`, {}],
      ['DELETE', path, undefined],
    ] as const) {
      const res = await api(method, p, srv.keys.bob, body);
      t.is(res.status, 404, `${method} ${p}`);
      t.is(res.body.error.code, 'upload_not_found');
    }
    t.is((await srv.app.repos.uploads.get(u.uploadId, 'alice'))?.status, 'INITIATED', 'nothing changed');
  });

  test.serial(
    title('the per-upload inflight limit answers 429 with Retry-After; reports free the slots'),
    async (t) => {
      const file = randomBytes(50 * MiB);
      const u = await init(file);
      const presign = (indexes: number[]) =>
        api('POST', `/v1/uploads/${u.uploadId}/chunks/presign`, srv.keys.alice, {
          chunks: indexes.map((chunkIndex) => ({ chunkIndex })),
        });
      t.is((await presign([0, 1, 2, 3])).status, 200);
      const refused = await presign([4]);
      t.is(refused.status, 429);
      t.truthy(refused.headers.get('retry-after'));
      t.like(refused.body.error, { code: 'throttled', limit: 'upload_inflight' });
      const tooBig = await presign([5, 6, 7, 8, 9]);
      t.is(tooBig.status, 400, 'more new chunks than the limit can ever hold');
      t.is(tooBig.body.error.maxNewChunks, 4, 'and the answer says how many it takes');
      t.is((await presign([0, 1])).status, 200, 're-presigning a held chunk takes no new slot');
      await sendChunks(u.uploadId, file, u.chunkSize, [0]);
      t.is((await presign([4])).status, 200, 'the report freed a slot');
      const metrics = await (await fetch(`${srv.url}/metrics`)).text();
      t.regex(metrics, /throttled_requests_total\{limit="upload_inflight"\} [1-9]/);
      t.is((await api('DELETE', `/v1/uploads/${u.uploadId}`, srv.keys.alice)).status, 204);
    },
  );

  test.serial(title('Idempotency-Key: a repeated init returns the same upload; another body is 422'), async (t) => {
    const key = `idem-${Date.now()}-${Math.random()}`;
    const body = { fileName: 'same.bin', fileSize: 10 };
    const first = await api('POST', '/v1/uploads', srv.keys.alice, body, { 'idempotency-key': key });
    const again = await api('POST', '/v1/uploads', srv.keys.alice, body, { 'idempotency-key': key });
    t.is(first.status, 201);
    t.is(again.status, 201);
    t.deepEqual(again.body, first.body);
    t.is(again.headers.get('idempotent-replayed'), 'true');
    const other = await api(
      'POST',
      '/v1/uploads',
      srv.keys.alice,
      { ...body, fileSize: 11 },
      { 'idempotency-key': key },
    );
    t.is(other.status, 422);
    t.is(other.body.error.code, 'idempotency_key_reused');
  });

  test.serial(title('abort discards the store upload; repeating it is harmless'), async (t) => {
    const file = randomBytes(6 * MiB);
    const u = await init(file);
    await sendChunks(u.uploadId, file, u.chunkSize, [0]);
    t.is((await api('DELETE', `/v1/uploads/${u.uploadId}`, srv.keys.alice)).status, 204);
    t.is((await api('DELETE', `/v1/uploads/${u.uploadId}`, srv.keys.alice)).status, 204);
    const row = await srv.app.repos.uploads.get(u.uploadId, 'alice');
    t.is(row?.status, 'ABORTED');
    t.is(row?.s3UploadId, null, 'the store no longer has it');
    const presign = await api('POST', `/v1/uploads/${u.uploadId}/chunks/presign`, srv.keys.alice, {
      chunks: [{ chunkIndex: 1 }],
    });
    t.is(presign.status, 409);
    t.is(presign.body.error.code, 'upload_not_in_progress');
  });

  /** The store's own view: is a multipart upload still open for this object key? */
  async function storeHasMultipart(key: string, s3UploadId: string): Promise<boolean> {
    if (srv.store instanceof S3ObjectStore) {
      const listed = await srv.store.client.send(
        new ListMultipartUploadsCommand({ Bucket: srv.config.s3Bucket!, Prefix: `${srv.config.s3Prefix}${key}` }),
      );
      return (listed.Uploads ?? []).some((u) => u.UploadId === s3UploadId);
    }
    try {
      await srv.store.listParts({ key, uploadId: s3UploadId });
      return true;
    } catch (err) {
      if (isObjectStoreError(err, 'no_such_upload')) return false;
      throw err;
    }
  }

  test.serial(title('after abort and after the expiry sweep no multipart upload is left in the store'), async (t) => {
    const file = randomBytes(6 * MiB);
    const aborted = await init(file);
    const expired = await init(file);
    await sendChunks(aborted.uploadId, file, aborted.chunkSize, [0]);
    await sendChunks(expired.uploadId, file, expired.chunkSize, [0], false);
    const rows = await Promise.all([aborted, expired].map((u) => srv.app.repos.uploads.get(u.uploadId, 'alice')));
    for (const r of rows) t.true(await storeHasMultipart(r!.objectKey, r!.s3UploadId!), 'open before');

    t.is((await api('DELETE', `/v1/uploads/${aborted.uploadId}`, srv.keys.alice)).status, 204);
    await srv.tdb.pool.query(`UPDATE uploads SET expires_at = now() - interval '1 second' WHERE id = $1`, [
      expired.uploadId,
    ]);
    t.true(await srv.app.sweeper.runOnce());
    const after = await srv.app.repos.uploads.get(expired.uploadId, 'alice');
    t.is(after?.status, 'ABORTED');
    t.regex(after?.failureReason ?? '', /expired/);
    for (const r of rows) t.false(await storeHasMultipart(r!.objectKey, r!.s3UploadId!), 'nothing left');
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    t.regex(metrics, /^incomplete_uploads \d+/m);
    t.regex(metrics, /^incomplete_upload_bytes \d+/m);
  });

  test.serial(title('a whole-file checksum mismatch ends FAILED, not COMPLETED'), async (t) => {
    const file = randomBytes(1000);
    const u = await init(file, { checksumSha256: sha256Base64(randomBytes(10)) });
    await sendChunks(u.uploadId, file, u.chunkSize, [0]);
    const res = await api('POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice);
    t.is(res.status, 422);
    t.is(res.body.error.code, 'checksum_mismatch');
    t.is((await srv.app.repos.uploads.get(u.uploadId, 'alice'))?.status, 'FAILED');
  });
}
