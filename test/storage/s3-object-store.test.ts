import { randomBytes, randomUUID } from 'node:crypto';
import { GetObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import test from 'ava';
import { S3ObjectStore, type S3ObjectStoreOptions } from '../../server/storage/s3-object-store.ts';
import { objectStoreContract } from './object-store-contract.ts';
import { md5Base64, sendRaw } from './object-store-http.ts';

/**
 * S3ObjectStore against a real S3 API (the Ceph RGW from infra/ceph-rgw.sh in CI), configured
 * like the server: S3_ENDPOINT, S3_REGION, S3_BUCKET, S3_FORCE_PATH_STYLE, AWS_* credentials.
 * Never a mock. Without S3_BUCKET only the offline presigning checks run.
 */

// --- Offline: the hand-built presigned URLs are exactly getSignedUrl's -------------------------

const SIGNING_TIME = Date.UTC(2025, 0, 2, 3, 4, 5);
const LOCATIONS: Array<Pick<S3ObjectStoreOptions, 'bucket' | 'region' | 'endpoint' | 'forcePathStyle'>> = [
  { bucket: 'conveyor-test', region: 'us-east-1', endpoint: 'http://127.0.0.1:7480', forcePathStyle: true },
  { bucket: 'my-bucket', region: 'eu-west-1' },
  { bucket: 'my-bucket', region: 'us-east-1', forcePathStyle: true },
  { bucket: 'my.dotted.bucket', region: 'eu-west-1' },
  { bucket: 'b-1', region: 'cn-north-1' },
  { bucket: 'b-1', region: 'eu-west-1', endpoint: 'https://s3.example.com:9000/base' },
];

for (const location of LOCATIONS) {
  test(`[s3] presigned URLs equal getSignedUrl's (${location.endpoint ?? 'AWS'} ${location.bucket}${location.forcePathStyle ? ' path-style' : ''})`, async (t) => {
    const client = new S3Client({
      ...location,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'session/token+=' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const store = new S3ObjectStore({ ...location, client, prefix: 'pre/', now: () => SIGNING_TIME + 999 });
    const key = 'dir/ünï code+(1)*~!.bin';
    const uploadId = 'upload/id+=~';
    const [part, bare] = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 900,
      parts: [
        { partNumber: 7, contentLength: 5_242_881, md5: 'md5/base64+==', sha256: 'sha256/base64+=' },
        { partNumber: 8, contentLength: 0 },
      ],
    });
    const signingDate = new Date(SIGNING_TIME);
    const sdkPart = await getSignedUrl(
      client,
      new UploadPartCommand({
        Bucket: location.bucket,
        Key: `pre/${key}`,
        UploadId: uploadId,
        PartNumber: 7,
        ContentLength: 5_242_881,
        ContentMD5: 'md5/base64+==',
        ChecksumSHA256: 'sha256/base64+=',
      }),
      // The store keeps the checksum a signed header (see s3-presigner.ts); the rest is SDK default.
      { expiresIn: 900, signingDate, unhoistableHeaders: new Set(['x-amz-checksum-sha256']) },
    );
    t.is(part!.url, sdkPart);
    t.deepEqual(part!.headers, {
      'content-length': '5242881',
      'content-md5': 'md5/base64+==',
      'x-amz-checksum-sha256': 'sha256/base64+=',
    });
    t.regex(part!.url, /X-Amz-SignedHeaders=content-length%3Bcontent-md5%3Bhost%3Bx-amz-checksum-sha256&/);
    t.is(part!.expiresAt.getTime(), SIGNING_TIME + 900_000);
    const sdkBare = await getSignedUrl(
      client,
      new UploadPartCommand({
        Bucket: location.bucket,
        Key: `pre/${key}`,
        UploadId: uploadId,
        PartNumber: 8,
        ContentLength: 0,
      }),
      { expiresIn: 900, signingDate },
    );
    t.is(bare!.url, sdkBare);

    const get = await store.presignGetObject({ key, range: { start: 5, end: 9 }, expiresInSeconds: 60 });
    const sdkGet = await getSignedUrl(client, new GetObjectCommand({ Bucket: location.bucket, Key: `pre/${key}` }), {
      expiresIn: 60,
      signingDate,
    });
    t.is(get.url, sdkGet);
    t.deepEqual(get.headers, { range: 'bytes=5-9' });
  });
}

// --- Against the real gateway -------------------------------------------------------------------

function optionsFromEnv(): S3ObjectStoreOptions | undefined {
  const bucket = process.env.S3_BUCKET;
  if (!bucket) return undefined;
  return {
    bucket,
    region: process.env.S3_REGION || process.env.AWS_REGION || 'us-east-1',
    endpoint: process.env.S3_ENDPOINT || undefined,
    forcePathStyle: /^(1|true|yes)$/i.test(process.env.S3_FORCE_PATH_STYLE ?? ''),
  };
}

const env = optionsFromEnv();
if (!env) {
  console.log('[s3] S3_BUCKET is not set: S3 integration tests not registered (run infra/ceph-rgw.sh)');
} else {
  const prefix = `conveyor-test-${randomUUID()}/`;
  objectStoreContract('s3', async () => new S3ObjectStore({ ...env, prefix }));

  test('[s3] listParts follows pagination', async (t) => {
    const store = new S3ObjectStore({ ...env, prefix, maxPartsPerPage: 2 });
    const key = `pagination/${randomUUID()}`;
    const { uploadId } = await store.createMultipartUpload({ key });
    t.teardown(() => store.abortMultipartUpload({ key, uploadId }));
    const bodies = [1, 2, 3, 4, 5].map(() => randomBytes(16));
    for (const [i, body] of bodies.entries()) {
      await store.uploadPart({ key, uploadId, partNumber: i + 1, body, contentLength: body.length });
    }
    const parts = await store.listParts({ key, uploadId });
    t.deepEqual(
      parts.map((p) => p.partNumber),
      [1, 2, 3, 4, 5],
    );
  });

  test('[s3] checkReady answers and onRequest sees every call', async (t) => {
    const seen: Array<[string, boolean]> = [];
    const store = new S3ObjectStore({
      ...env,
      prefix,
      onRequest: (op, seconds, ok) => seen.push([op, ok && seconds >= 0]),
    });
    await store.checkReady();
    t.is(await store.headObject(`missing/${randomUUID()}`), null);
    t.deepEqual(seen, [
      ['HeadBucket', true],
      ['HeadObject', true], // a 404 is a definite answer, not a store failure
    ]);
    const broken = new S3ObjectStore({ ...env, bucket: `conveyor-missing-${randomUUID().slice(0, 8)}` });
    await t.throwsAsync(broken.checkReady());
  });

  test('[s3] presigned PUT with a signed Content-MD5 the client omits is refused', async (t) => {
    const store = new S3ObjectStore({ ...env, prefix });
    const key = `signed-md5/${randomUUID()}`;
    const { uploadId } = await store.createMultipartUpload({ key });
    t.teardown(() => store.abortMultipartUpload({ key, uploadId }));
    const body = randomBytes(32);
    const [req] = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 60,
      parts: [{ partNumber: 1, contentLength: body.length, md5: md5Base64(body) }],
    });
    const res = await sendRaw('PUT', req!.url, { 'content-length': String(body.length) }, body);
    t.is(res.status, 403, res.body.toString());
  });
}
