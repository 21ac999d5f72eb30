import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import test from 'ava';
import { DiskTokenError } from '../../server/storage/disk-token.ts';
import { isObjectStoreError } from '../../server/storage/errors.ts';
import { type DiskStoreFixture, startDiskStore } from '../helpers/disk-store-app.ts';
import { objectStoreContract } from './object-store-contract.ts';
import { md5Base64, sendRaw } from './object-store-http.ts';

let contractFixture: DiskStoreFixture | undefined;
objectStoreContract(
  'disk',
  async () => {
    contractFixture = await startDiskStore();
    return contractFixture.store;
  },
  { teardown: async () => contractFixture?.close() },
);

/** Every file under `dir`, relative to it. */
async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name)));
}

test('[disk] a tampered, foreign or missing token is refused with 403', async (t) => {
  const f = await startDiskStore();
  t.teardown(() => f.close());
  const key = 'a/b.bin';
  const { uploadId } = await f.store.createMultipartUpload({ key });
  const [req] = await f.store.presignUploadParts({
    key,
    uploadId,
    expiresInSeconds: 60,
    parts: [{ partNumber: 1, contentLength: 4 }],
  });
  const url = new URL(req!.url);
  const [payload, mac] = url.searchParams.get('token')!.split('.');
  // Same MAC, claims edited to allow a bigger part: the HMAC no longer matches.
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
  const forged = Buffer.from(JSON.stringify({ ...claims, contentLength: 5 })).toString('base64url');
  url.searchParams.set('token', `${forged}.${mac}`);
  const res = await sendRaw('PUT', url.href, { 'content-length': '5' }, Buffer.from('12345'));
  t.is(res.status, 403);
  t.is(JSON.parse(res.body.toString()).error.code, 'signature_invalid');

  const other = await startDiskStore({ secret: 'another-secret-another-secret' });
  t.teardown(() => other.close());
  const [foreign] = await other.store.presignUploadParts({
    key,
    uploadId,
    expiresInSeconds: 60,
    parts: [{ partNumber: 1, contentLength: 4 }],
  });
  const foreignUrl = foreign!.url.replace(other.baseUrl, f.baseUrl);
  t.is((await sendRaw('PUT', foreignUrl, { 'content-length': '4' }, Buffer.from('1234'))).status, 403);
  t.is((await sendRaw('PUT', `${f.baseUrl}/v1/disk-store/parts`, {}, Buffer.alloc(0))).status, 403);
  t.deepEqual(await f.store.listParts({ key, uploadId }), []);
});

test('[disk] verifyToken reports expiry by the store clock', async (t) => {
  let now = Date.now();
  const f = await startDiskStore({ now: () => now });
  t.teardown(() => f.close());
  const get = await f.store.presignGetObject({ key: 'k', expiresInSeconds: 10 });
  const token = new URL(get.url).searchParams.get('token')!;
  t.is(f.store.verifyToken(token).key, 'k');
  now += 11_000;
  const err = t.throws(() => f.store.verifyToken(token));
  t.true(err instanceof DiskTokenError && err.reason === 'expired');
});

test('[disk] signed headers must be sent as signed', async (t) => {
  const f = await startDiskStore();
  t.teardown(() => f.close());
  const key = 'signed/headers';
  const { uploadId } = await f.store.createMultipartUpload({ key });
  const body = Buffer.from('hello');
  const [req] = await f.store.presignUploadParts({
    key,
    uploadId,
    expiresInSeconds: 60,
    parts: [{ partNumber: 1, contentLength: body.length, md5: md5Base64(body) }],
  });
  const noMd5 = await sendRaw('PUT', req!.url, { 'content-length': '5' }, body);
  t.is(noMd5.status, 403);
  const badLength = await sendRaw('PUT', req!.url, { ...req!.headers, 'content-length': '4' }, body.subarray(0, 4));
  t.is(JSON.parse(badLength.body.toString()).error.code, 'content_length_mismatch');
  const ok = await sendRaw('PUT', req!.url, req!.headers, body);
  t.is(ok.status, 200);
  t.is(ok.body.length, 0);
  const { etag } = (await f.store.listParts({ key, uploadId }))[0]!;
  await f.store.completeMultipartUpload({ key, uploadId, parts: [{ partNumber: 1, etag }] });

  const get = await f.store.presignGetObject({ key, range: { start: 1, end: 2 }, expiresInSeconds: 60 });
  t.is((await sendRaw('GET', get.url, { range: 'bytes=0-4' })).status, 403);
  const ranged = await sendRaw('GET', get.url, get.headers);
  t.is(ranged.status, 206);
  t.is(ranged.body.toString(), 'el');
  const head = await sendRaw('HEAD', get.url, {});
  t.is(head.status, 206);
  t.is(head.headers['content-length'], '2');
});

test('[disk] complete and failed writes leave no temp files or parts behind', async (t) => {
  const f = await startDiskStore();
  t.teardown(() => f.close());
  const key = 'atomic/object';
  const { uploadId } = await f.store.createMultipartUpload({ key });
  const part = randomBytes(5 * 1024 * 1024);
  const bad = f.store.uploadPart({ key, uploadId, partNumber: 1, body: part, contentLength: part.length, md5: 'AAAA' });
  t.true(isObjectStoreError(await t.throwsAsync(bad), 'bad_digest'));
  const short = f.store.uploadPart({ key, uploadId, partNumber: 1, body: part, contentLength: part.length + 1 });
  await t.throwsAsync(short);
  t.deepEqual(await walk(join(f.root, 'multipart', uploadId)), ['upload.json']);

  const { etag } = await f.store.uploadPart({ key, uploadId, partNumber: 1, body: part, contentLength: part.length });
  const last = Buffer.from('end');
  const p2 = await f.store.uploadPart({ key, uploadId, partNumber: 2, body: last, contentLength: 3 });
  await f.store.completeMultipartUpload({
    key,
    uploadId,
    parts: [
      { partNumber: 1, etag },
      { partNumber: 2, etag: p2.etag },
    ],
  });
  const files = await walk(f.root);
  t.false(
    files.some((p) => p.includes('.tmp-')),
    files.join(', '),
  );
  t.false(files.some((p) => p.startsWith('multipart/')));
  t.is(files.filter((p) => p.startsWith('objects/')).length, 2); // data + its meta
  t.is((await f.store.headObject(key))?.size, part.length + 3);
});

test('[disk] keys and upload ids cannot escape the root', async (t) => {
  const f = await startDiskStore();
  t.teardown(() => f.close());
  for (const key of ['../../../../tmp/escape', '..', '/etc/passwd', 'a/../../b', '.']) {
    const { uploadId } = await f.store.createMultipartUpload({ key });
    const body = Buffer.from(key);
    const { etag } = await f.store.uploadPart({ key, uploadId, partNumber: 1, body, contentLength: body.length });
    await f.store.completeMultipartUpload({ key, uploadId, parts: [{ partNumber: 1, etag }] });
    t.is((await f.store.headObject(key))?.size, body.length, key);
  }
  // Everything stayed inside objects/, named by hash.
  const files = await walk(f.root);
  t.true(
    files.every((p) => /^objects\/[0-9a-f]{64}(\.\d+\.json)?$/.test(p)),
    files.join(', '),
  );
  for (const uploadId of ['../objects', '../../', '..']) {
    const err = await t.throwsAsync(f.store.listParts({ key: 'x', uploadId }));
    t.true(isObjectStoreError(err, 'no_such_upload'));
    await f.store.abortMultipartUpload({ key: 'x', uploadId });
  }
  t.is((await walk(f.root)).length, files.length);
});

test('[disk] an upload id is only valid with its own key', async (t) => {
  const f = await startDiskStore();
  t.teardown(() => f.close());
  const { uploadId } = await f.store.createMultipartUpload({ key: 'mine' });
  const err = await t.throwsAsync(f.store.listParts({ key: 'yours', uploadId }));
  t.true(isObjectStoreError(err, 'no_such_upload'));
});

test('[disk] a re-uploaded part and a replaced object keep exactly one meta each', async (t) => {
  const f = await startDiskStore();
  t.teardown(() => f.close());
  const key = 'replace/me';
  for (const content of ['first version', 'second']) {
    const { uploadId } = await f.store.createMultipartUpload({ key });
    await f.store.uploadPart({ key, uploadId, partNumber: 1, body: Buffer.from('stale'), contentLength: 5 });
    const body = Buffer.from(content);
    const { etag } = await f.store.uploadPart({ key, uploadId, partNumber: 1, body, contentLength: body.length });
    t.deepEqual(await f.store.listParts({ key, uploadId }), [{ partNumber: 1, etag, size: body.length }]);
    t.is((await walk(join(f.root, 'multipart', uploadId))).length, 3); // upload.json, 1.part, its meta
    await f.store.completeMultipartUpload({ key, uploadId, parts: [{ partNumber: 1, etag }] });
  }
  t.is((await walk(f.root)).length, 2);
  t.is((await f.store.headObject(key))?.size, 'second'.length);
  const get = await f.store.presignGetObject({ key, expiresInSeconds: 60 });
  const res = await sendRaw('GET', get.url, { range: 'bytes=100-200' });
  t.is(res.status, 416);
  t.is(res.headers['content-range'], 'bytes */6');
  t.is(JSON.parse(res.body.toString()).error.code, 'range_not_satisfiable');
});
