import { createHash, randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import test from 'ava';
import { loadConfig } from '../../server/config.ts';
import { encryptionRefusal } from '../../server/storage/s3-errors.ts';
import type { S3ObjectStore } from '../../server/storage/s3-object-store.ts';
import { callApi, chunkOf, initUpload, uploadFile } from '../helpers/api-client.ts';
import { s3Configured, startTestServer, type TestServer } from '../helpers/app.ts';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Key ids of Ceph RGW's `testing` KMS backend (infra/ceph-rgw.sh, RGW_KMS_TEST_KEYS). */
const KMS_KEY = process.env.CONVEYOR_TEST_KMS_KEY_ID ?? 'testkey-1';
const KMS_KEY_2 = process.env.CONVEYOR_TEST_KMS_KEY_ID_2 ?? 'testkey-2';

/** Multipart uploads the bucket holds under this server's object keys (none may be left by a refusal). */
async function openMultipartUploads(srv: TestServer): Promise<string[]> {
  const s3 = srv.store as S3ObjectStore;
  const Prefix = srv.config.s3Prefix;
  const out = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: srv.config.s3Bucket!, Prefix }));
  return (out.Uploads ?? []).map((u) => u.Key!);
}

async function uploadRows(srv: TestServer): Promise<number> {
  return (await srv.tdb.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM uploads')).rows[0]!.n;
}

const s3Test = s3Configured() ? test : test.skip;

s3Test('[s3] SSE-KMS: presigned parts, relay, complete, HeadObject, presigned and streamed downloads', async (t) => {
  const srv = await startTestServer({ store: 's3' });
  t.teardown(() => srv.close());
  const file = randomBytes(11 * MiB + 777);
  const encryption = { mode: 'SSE-KMS', kmsKeyId: KMS_KEY, bucketKey: true };
  // Chunks 0 and 1 direct to S3 through presigned URLs with exactly the headers the server gave.
  const u = await initUpload(srv.url, srv.keys.alice, file, { encryption });
  const presign = await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/chunks/presign`, srv.keys.alice, {
    chunks: [{ chunkIndex: 0 }, { chunkIndex: 1 }],
  });
  t.is(presign.status, 200);
  for (const c of presign.body.chunks) {
    t.deepEqual(
      Object.keys(c.headers),
      ['content-length'],
      'SSE-KMS parts need no SSE header (and no key is handed out)',
    );
    const put = await fetch(c.url, {
      method: 'PUT',
      headers: c.headers,
      body: new Uint8Array(chunkOf(file, u.chunkSize, c.chunkIndex)),
    });
    t.is(put.status, 200, await put.clone().text());
    t.is(put.headers.get('x-amz-server-side-encryption'), 'aws:kms');
    const rep = await callApi(srv.url, 'PATCH', `/v1/uploads/${u.uploadId}/chunks/${c.chunkIndex}`, srv.keys.alice, {
      etag: put.headers.get('etag'),
      size: chunkOf(file, u.chunkSize, c.chunkIndex).length,
    });
    t.is(rep.status, 204);
  }
  // Chunk 2 through the relay.
  const relay = await fetch(`${srv.url}/v1/uploads/${u.uploadId}/chunks/2`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${srv.keys.alice}`, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(chunkOf(file, u.chunkSize, 2)),
  });
  t.is(relay.status, 200, await relay.clone().text());
  const done = await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice);
  t.is(done.status, 200);

  const head = await srv.store.headObject(`uploads/${u.uploadId}`);
  t.deepEqual(head?.encryption, { mode: 'SSE-KMS', kmsKeyId: KMS_KEY }, 'the store reports the object encrypted');
  const status = await callApi(srv.url, 'GET', `/v1/uploads/${u.uploadId}`, srv.keys.alice);
  t.deepEqual(status.body.encryption, encryption);

  const manifest = await callApi(srv.url, 'GET', `/v1/files/${u.uploadId}`, srv.keys.alice);
  const parts = await Promise.all(
    manifest.body.chunks.map(async (c: { url: string; start: number; end: number }) => {
      const res = await fetch(c.url, { headers: { range: `bytes=${c.start}-${c.end}` } });
      t.is(res.status, 206);
      return Buffer.from(await res.arrayBuffer());
    }),
  );
  t.is(sha256(Buffer.concat(parts)), sha256(file), 'presigned GETs decrypt transparently');
  const streamed = await fetch(`${srv.url}/v1/files/${u.uploadId}/content`, {
    headers: { authorization: `Bearer ${srv.keys.alice}` },
  });
  t.is(sha256(Buffer.from(await streamed.arrayBuffer())), sha256(file));
});

s3Test('[s3] SSE_DEFAULT=SSE-KMS applies to uploads that ask for nothing', async (t) => {
  const srv = await startTestServer({ store: 's3', env: { SSE_DEFAULT: 'SSE-KMS', SSE_KMS_KEY_ID: KMS_KEY_2 } });
  t.teardown(() => srv.close());
  const done = await uploadFile(srv.url, srv.keys.alice, randomBytes(1000));
  const head = await srv.store.headObject(`uploads/${done.uploadId}`);
  t.deepEqual(head?.encryption, { mode: 'SSE-KMS', kmsKeyId: KMS_KEY_2 });
});

s3Test(
  '[s3] encryption the store refuses or ignores is 422 encryption_unsupported, leaving nothing behind',
  async (t) => {
    // A prefix of its own: other suites share the bucket, and nothing may be left under this one.
    const srv = await startTestServer({
      store: 's3',
      env: { S3_PREFIX: `sse-refusal-${randomBytes(4).toString('hex')}/` },
    });
    t.teardown(() => srv.close());
    for (const encryption of [{ mode: 'SSE-KMS', kmsKeyId: 'no-such-key' }]) {
      const res = await callApi(srv.url, 'POST', '/v1/uploads', srv.keys.alice, {
        fileName: 'x',
        fileSize: 10,
        encryption,
      });
      t.is(res.status, 422, JSON.stringify(res.body));
      t.is(res.body.error.code, 'encryption_unsupported');
    }
    // SSE-S3: AWS confirms AES256 (then the object must say so); Ceph RGW 16 accepts the header
    // and stores plaintext, which Conveyor must refuse rather than report as encrypted.
    const sse = await callApi(srv.url, 'POST', '/v1/uploads', srv.keys.alice, {
      fileName: 'x',
      fileSize: 10,
      encryption: { mode: 'SSE-S3' },
    });
    if (sse.status === 201) {
      await callApi(srv.url, 'DELETE', `/v1/uploads/${sse.body.uploadId}`, srv.keys.alice);
      const done = await uploadFile(srv.url, srv.keys.alice, Buffer.alloc(10), { encryption: { mode: 'SSE-S3' } });
      t.deepEqual((await srv.store.headObject(`uploads/${done.uploadId}`))?.encryption, { mode: 'SSE-S3' });
    } else {
      t.is(sse.status, 422);
      t.is(sse.body.error.code, 'encryption_unsupported');
      t.regex(sse.body.error.reason, /x-amz-server-side-encryption: \(none\)/);
      t.is(await uploadRows(srv), 0, 'no upload row');
    }
    t.deepEqual(await openMultipartUploads(srv), [], 'no multipart upload left in the bucket');
  },
);

test('[disk] the requested encryption is recorded and reported; bad encryption input is 400 with no state change', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const encryption = { mode: 'SSE-KMS', kmsKeyId: 'arn:aws:kms:us-east-1:111122223333:key/abc', bucketKey: true };
  const done = await uploadFile(srv.url, srv.keys.alice, randomBytes(2000), { encryption });
  const status = await callApi(srv.url, 'GET', `/v1/uploads/${done.uploadId}`, srv.keys.alice);
  t.deepEqual(status.body.encryption, encryption);
  t.deepEqual((await srv.store.headObject(`uploads/${done.uploadId}`))?.encryption, {
    mode: 'SSE-KMS',
    kmsKeyId: encryption.kmsKeyId,
  });
  const s3mode = await uploadFile(srv.url, srv.keys.alice, randomBytes(10), { encryption: { mode: 'SSE-S3' } });
  t.deepEqual((await srv.store.headObject(`uploads/${s3mode.uploadId}`))?.encryption, { mode: 'SSE-S3' });
  const rows = await uploadRows(srv);
  for (const bad of [
    { mode: 'SSE-C' },
    { mode: 'AES256' },
    { mode: 'SSE-S3', kmsKeyId: 'k' },
    { mode: 'SSE-KMS', kmsKeyId: 'has space' },
    { mode: 'SSE-KMS', kmsKeyId: '' },
    { mode: 'SSE-KMS', bucketKey: 'yes' },
    'SSE-KMS',
  ]) {
    const res = await callApi(srv.url, 'POST', '/v1/uploads', srv.keys.alice, {
      fileName: 'x',
      fileSize: 1,
      encryption: bad,
    });
    t.is(res.status, 400, JSON.stringify(bad));
    t.is(res.body.error.code, 'invalid_request');
  }
  t.is(await uploadRows(srv), rows);
});

test('encryptionRefusal maps only encryption answers to encryption_unsupported', (t) => {
  const sdk = (name: string, message: string, status: number) =>
    Object.assign(new Error(message), { name, $metadata: { httpStatusCode: status } });
  const kms = { mode: 'SSE-KMS' };
  const refusals = [
    sdk('InvalidArgument', 'Server Side Encryption with KMS managed key requires HTTP header …-key-id', 400),
    sdk('InvalidAccessKeyId', 'Failed to retrieve the actual key, kms-keyid: nope', 403),
    sdk('KMS.NotFoundException', 'Invalid keyId nope', 400),
  ];
  for (const err of refusals) t.is((encryptionRefusal(err, kms) as { code?: string }).code, 'encryption_unsupported');
  const others = [
    sdk('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', 403),
    sdk('AccessDenied', 'Access Denied', 403),
    sdk('InternalError', 'We encountered an internal error', 500),
  ];
  for (const err of others) t.is(encryptionRefusal(err, kms), err);
});

test('SSE settings are validated at start-up', (t) => {
  t.is(loadConfig({ SSE_DEFAULT: 'SSE-KMS', SSE_KMS_KEY_ID: 'k1' }).sseKmsKeyId, 'k1');
  t.is(loadConfig({}).sseDefault, 'none');
  t.throws(() => loadConfig({ SSE_DEFAULT: 'aws:kms' }), {
    message: /SSE_DEFAULT="aws:kms": expected none, SSE-S3 or SSE-KMS/,
  });
  t.throws(() => loadConfig({ SSE_KMS_KEY_ID: 'k1' }), {
    message: /SSE_KMS_KEY_ID="k1": only applies with SSE_DEFAULT=SSE-KMS/,
  });
  t.throws(() => loadConfig({ QUOTA_MAX_TOTAL_BYTES: '-5' }), { message: /QUOTA_MAX_TOTAL_BYTES/ });
});
