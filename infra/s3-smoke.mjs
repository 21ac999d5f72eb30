#!/usr/bin/env node
// Smoke test for the S3 endpoint in the environment (infra/ceph-rgw.sh or LocalStack):
// exercises exactly the S3 features Conveyor relies on, so an infra problem shows
// up here rather than as a confusing app test failure.
//
//   eval "$(infra/ceph-rgw.sh env)" && node infra/s3-smoke.mjs
//
// Needs `npm ci` (@aws-sdk/client-s3, @aws-sdk/s3-request-presigner).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketCorsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

const env = process.env;
const endpoint = env.S3_ENDPOINT ?? 'http://127.0.0.1:7480';
const Bucket = env.S3_BUCKET ?? 'conveyor-test';
const s3 = new S3Client({
  endpoint,
  region: env.S3_REGION ?? env.AWS_REGION ?? 'us-east-1',
  forcePathStyle: (env.S3_FORCE_PATH_STYLE ?? 'true') === 'true',
  credentials: {
    accessKeyId: env.AWS_ACCESS_KEY_ID ?? 'conveyor-test-access',
    secretAccessKey: env.AWS_SECRET_ACCESS_KEY ?? 'conveyor-test-secret',
  },
  // Newer SDKs add CRC checksums by default; keep requests like the app's presigned ones.
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

const md5 = (b) => createHash('md5').update(b).digest('hex');
const prefix = `smoke/${Date.now()}-${randomBytes(3).toString('hex')}`;
let passed = 0;
let failed = 0;
async function step(name, fn) {
  const t = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e?.stack ?? e}`);
  }
}

await step('PutObject + GetObject', async () => {
  const Key = `${prefix}/small.txt`;
  await s3.send(new PutObjectCommand({ Bucket, Key, Body: 'hello conveyor' }));
  const r = await s3.send(new GetObjectCommand({ Bucket, Key }));
  assert.equal(await r.Body.transformToString(), 'hello conveyor');
  await s3.send(new DeleteObjectCommand({ Bucket, Key }));
});

const part1 = randomBytes(5 * 1024 * 1024);
const part2 = randomBytes(12345);
const mpKey = `${prefix}/multipart.bin`;
await step('multipart: 5 MiB + small part, ListParts, Complete, ranged GET', async () => {
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: mpKey }));
  const e1 = await s3.send(new UploadPartCommand({ Bucket, Key: mpKey, UploadId, PartNumber: 1, Body: part1 }));
  const e2 = await s3.send(new UploadPartCommand({ Bucket, Key: mpKey, UploadId, PartNumber: 2, Body: part2 }));
  assert.equal(e1.ETag, `"${md5(part1)}"`);
  const lp = await s3.send(new ListPartsCommand({ Bucket, Key: mpKey, UploadId }));
  assert.deepEqual(
    lp.Parts.map((p) => [p.PartNumber, p.Size, p.ETag]),
    [
      [1, part1.length, e1.ETag],
      [2, part2.length, e2.ETag],
    ],
  );
  const lu = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix }));
  assert.ok(lu.Uploads.some((u) => u.UploadId === UploadId));
  const done = await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket,
      Key: mpKey,
      UploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: e1.ETag },
          { PartNumber: 2, ETag: e2.ETag },
        ],
      },
    }),
  );
  // Ceph 16.2 (Debian 12) RGW returns an empty <ETag/> from CompleteMultipartUpload
  // (RH BZ 2266579, fixed in later Ceph); AWS/LocalStack return it. Apps must
  // fall back to HeadObject, which is what we check here.
  if (done.ETag) assert.match(done.ETag, /-2"$/);
  else console.log('     note: CompleteMultipartUpload returned an empty ETag (RGW 16.2 bug)');
  const head = await s3.send(new HeadObjectCommand({ Bucket, Key: mpKey }));
  assert.match(head.ETag, /^"[0-9a-f]{32}-2"$/);
  assert.equal(head.ContentLength, part1.length + part2.length);
  const start = 5 * 1024 * 1024 - 10;
  const r = await s3.send(new GetObjectCommand({ Bucket, Key: mpKey, Range: `bytes=${start}-${start + 19}` }));
  assert.equal(r.ContentRange, `bytes ${start}-${start + 19}/${part1.length + part2.length}`);
  const got = Buffer.from(await r.Body.transformToByteArray());
  assert.deepEqual(got, Buffer.concat([part1.subarray(start), part2.subarray(0, 10)]));
});

await step('presigned UploadPart PUT + presigned ranged GET (SigV4 query auth)', async () => {
  const Key = `${prefix}/presigned.bin`;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  const url = await getSignedUrl(s3, new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1 }), {
    expiresIn: 300,
  });
  const put = await fetch(url, { method: 'PUT', body: part2, headers: { Origin: 'http://example.test' } });
  assert.equal(put.status, 200, await put.text());
  const etag = put.headers.get('etag');
  assert.equal(etag, `"${md5(part2)}"`);
  // CORS: a browser can only read ETag if it is exposed.
  assert.equal(put.headers.get('access-control-allow-origin'), '*');
  assert.match(put.headers.get('access-control-expose-headers') ?? '', /etag/i);
  await s3.send(
    new CompleteMultipartUploadCommand({
      Bucket,
      Key,
      UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: etag }] },
    }),
  );
  const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket, Key }), { expiresIn: 300 });
  const get = await fetch(getUrl, { headers: { Range: 'bytes=0-99' } });
  assert.equal(get.status, 206);
  assert.deepEqual(Buffer.from(await get.arrayBuffer()), part2.subarray(0, 100));
  await s3.send(new DeleteObjectCommand({ Bucket, Key }));
});

await step('abort multipart upload', async () => {
  const Key = `${prefix}/aborted.bin`;
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key }));
  await s3.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 1, Body: part2 }));
  await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
  // AWS says NoSuchUpload; RGW 16.2 says NoSuchKey (both 404).
  await assert.rejects(s3.send(new ListPartsCommand({ Bucket, Key, UploadId })), (e) => {
    assert.equal(e.$metadata?.httpStatusCode, 404);
    assert.match(e.name, /NoSuchUpload|NoSuchKey/);
    return true;
  });
});

await step('GetBucketCors + browser preflight', async () => {
  const cors = await s3.send(new GetBucketCorsCommand({ Bucket }));
  const rule = cors.CORSRules[0];
  assert.deepEqual(rule.AllowedOrigins, ['*']);
  for (const m of ['GET', 'PUT', 'POST', 'HEAD', 'DELETE']) assert.ok(rule.AllowedMethods.includes(m), m);
  assert.ok(rule.ExposeHeaders.includes('ETag'));
  const pre = await fetch(`${endpoint}/${Bucket}/${prefix}/x`, {
    method: 'OPTIONS',
    headers: {
      Origin: 'http://example.test',
      'Access-Control-Request-Method': 'PUT',
      'Access-Control-Request-Headers': 'content-type',
    },
  });
  assert.equal(pre.status, 200);
  assert.match(pre.headers.get('access-control-allow-methods') ?? '', /PUT/);
});

await s3.send(new DeleteObjectCommand({ Bucket, Key: mpKey })).catch(() => {});
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
