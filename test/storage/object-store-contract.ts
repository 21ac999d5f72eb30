import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { isObjectStoreError, type ObjectStoreErrorCode } from '../../server/storage/errors.ts';
import type { ObjectStore } from '../../server/storage/object-store.ts';
import {
  md5Base64,
  md5Hex,
  multipartEtag,
  putPresigned,
  readAll,
  sendRaw,
  sha256Base64,
  sleep,
} from './object-store-http.ts';

const MiB = 1024 * 1024;

/**
 * The behaviour every ObjectStore must share, exercised the way the coordinator and its
 * clients use it: presigned URLs are called over real HTTP with exactly the returned headers.
 * Test titles start with `[name]` so the output says which store ran.
 */
export function objectStoreContract(
  name: string,
  makeStore: () => Promise<ObjectStore>,
  options: { teardown?: () => Promise<void> } = {},
): void {
  let store: ObjectStore;
  const uploads: Array<{ key: string; uploadId: string }> = [];
  const keys: string[] = [];
  const title = (s: string) => `[${name}] ${s}`;

  /** A fresh key with characters that need escaping in URLs and file systems. */
  const newKey = () => {
    const key = `conveyor-contract/${randomUUID()}/dïr/na me+(1)*.bin`;
    keys.push(key);
    return key;
  };
  const newUpload = async (contentType?: string) => {
    const key = newKey();
    const { uploadId } = await store.createMultipartUpload({ key, contentType });
    uploads.push({ key, uploadId });
    return { key, uploadId };
  };
  const rejectsWith = async (t: ExecutionContext, p: Promise<unknown>, code: ObjectStoreErrorCode) => {
    const err = await t.throwsAsync(p);
    t.true(isObjectStoreError(err, code), `expected ObjectStoreError ${code}, got ${String(err)}`);
  };

  test.before(async () => {
    store = await makeStore();
  });

  test.after.always(async () => {
    if (store) {
      await Promise.allSettled(uploads.map((u) => store.abortMultipartUpload(u)));
      await Promise.allSettled(keys.map((k) => store.deleteObject(k)));
    }
    await options.teardown?.();
  });

  test(title('multipart round trip through presigned URLs, ranged and conditional reads'), async (t) => {
    const { key, uploadId } = await newUpload('application/x-conveyor-test');
    // S3: every part but the last must be at least 5 MiB; one byte over is the tightest legal case.
    const parts = [randomBytes(5 * MiB + 1), randomBytes(1000)];
    const presigned = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 300,
      parts: [
        { partNumber: 1, contentLength: parts[0]!.length, md5: md5Base64(parts[0]!), sha256: sha256Base64(parts[0]!) },
        { partNumber: 2, contentLength: parts[1]!.length },
      ],
    });
    t.is(presigned.length, 2);
    t.is(presigned[0]!.headers['content-md5'], md5Base64(parts[0]!));
    t.true(presigned[0]!.expiresAt.getTime() > Date.now() + 200_000);
    for (const [i, req] of presigned.entries()) {
      const res = await putPresigned(req, parts[i]!);
      t.is(res.status, 200, await res.text());
      t.is(res.headers.get('etag'), `"${md5Hex(parts[i]!)}"`);
    }

    const listed = await store.listParts({ key, uploadId });
    t.deepEqual(
      listed,
      parts.map((p, i) => ({ partNumber: i + 1, etag: `"${md5Hex(p)}"`, size: p.length })),
    );

    const done = await store.completeMultipartUpload({
      key,
      uploadId,
      parts: listed.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
    });
    const whole = Buffer.concat(parts);
    t.deepEqual(done, { etag: multipartEtag(parts), size: whole.length });

    const head = await store.headObject(key);
    t.is(head?.size, whole.length);
    t.is(head?.etag, done.etag);
    t.is(head?.contentType, 'application/x-conveyor-test');

    const full = await store.getObject({ key });
    t.is(full.contentLength, whole.length);
    t.is(full.totalSize, whole.length);
    t.true((await readAll(full.body)).equals(whole));

    const range = { start: 5 * MiB - 10, end: 5 * MiB + 20 };
    const ranged = await store.getObject({ key, range, ifMatch: done.etag });
    t.is(ranged.contentLength, 31);
    t.is(ranged.totalSize, whole.length);
    t.true((await readAll(ranged.body)).equals(whole.subarray(range.start, range.end + 1)));

    // A last-pos past the end means "to the end" (RFC 9110 §14.1.2); a first-pos past it is unsatisfiable.
    const tail = await store.getObject({ key, range: { start: whole.length - 5, end: whole.length + 100 } });
    t.true((await readAll(tail.body)).equals(whole.subarray(whole.length - 5)));
    await rejectsWith(
      t,
      store.getObject({ key, range: { start: whole.length, end: whole.length + 9 } }),
      'invalid_range',
    );
    await rejectsWith(
      t,
      store.getObject({ key, ifMatch: '"0123456789abcdef0123456789abcdef"' }),
      'precondition_failed',
    );

    const get = await store.presignGetObject({ key, range, expiresInSeconds: 300 });
    t.is(get.method, 'GET');
    t.is(get.headers.range, `bytes=${range.start}-${range.end}`);
    const res = await fetch(get.url, { headers: { ...get.headers, 'if-match': done.etag } });
    t.is(res.status, 206);
    t.is(res.headers.get('content-range'), `bytes ${range.start}-${range.end}/${whole.length}`);
    t.is(res.headers.get('etag'), done.etag);
    t.true(Buffer.from(await res.arrayBuffer()).equals(whole.subarray(range.start, range.end + 1)));
    const stale = await fetch(get.url, {
      headers: { ...get.headers, 'if-match': '"0123456789abcdef0123456789abcdef"' },
    });
    t.is(stale.status, 412);

    const getAll = await store.presignGetObject({ key, expiresInSeconds: 300 });
    t.deepEqual(getAll.headers, {});
    const resAll = await fetch(getAll.url);
    t.is(resAll.status, 200);
    t.true(Buffer.from(await resAll.arrayBuffer()).equals(whole));

    await store.deleteObject(key);
    t.is(await store.headObject(key), null);
    await rejectsWith(t, store.getObject({ key }), 'not_found');
    await t.notThrowsAsync(store.deleteObject(key));
  });

  test(title('uploadPart from a Buffer and from a stream'), async (t) => {
    const { key, uploadId } = await newUpload();
    const parts = [randomBytes(5 * MiB), randomBytes(300_000)];
    const first = await store.uploadPart({
      key,
      uploadId,
      partNumber: 1,
      body: parts[0]!,
      contentLength: parts[0]!.length,
      md5: md5Base64(parts[0]!),
    });
    t.is(first.etag, `"${md5Hex(parts[0]!)}"`);
    const chunks = [parts[1]!.subarray(0, 100_000), parts[1]!.subarray(100_000, 250_000), parts[1]!.subarray(250_000)];
    const second = await store.uploadPart({
      key,
      uploadId,
      partNumber: 2,
      body: Readable.from(chunks),
      contentLength: parts[1]!.length,
    });
    t.is(second.etag, `"${md5Hex(parts[1]!)}"`);
    const done = await store.completeMultipartUpload({
      key,
      uploadId,
      parts: [
        { partNumber: 1, etag: first.etag },
        { partNumber: 2, etag: second.etag },
      ],
    });
    t.deepEqual(done, { etag: multipartEtag(parts), size: 5 * MiB + 300_000 });
    t.true((await readAll((await store.getObject({ key })).body)).equals(Buffer.concat(parts)));
  });

  test(title('a presigned PUT with a body length other than the signed one is refused'), async (t) => {
    const { key, uploadId } = await newUpload();
    const body = randomBytes(64);
    const [req] = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 300,
      parts: [{ partNumber: 1, contentLength: 64 }],
    });
    for (const wrong of [Buffer.concat([body, Buffer.from('x')]), body.subarray(1)]) {
      const res = await sendRaw('PUT', req!.url, { ...req!.headers, 'content-length': String(wrong.length) }, wrong);
      t.true(res.status === 400 || res.status === 403, `status ${res.status}: ${res.body.toString()}`);
    }
    t.deepEqual(await store.listParts({ key, uploadId }), []);
  });

  test(title('a body that does not match Content-MD5 is refused (presigned and relay)'), async (t) => {
    const { key, uploadId } = await newUpload();
    const body = randomBytes(1024);
    const [req] = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 300,
      parts: [{ partNumber: 1, contentLength: body.length, md5: md5Base64(randomBytes(1024)) }],
    });
    const res = await sendRaw('PUT', req!.url, req!.headers, body);
    t.is(res.status, 400, res.body.toString()); // S3: 400 BadDigest
    const relay = store.uploadPart({
      key,
      uploadId,
      partNumber: 2,
      body,
      contentLength: body.length,
      md5: md5Base64(Buffer.from('other bytes')),
    });
    await rejectsWith(t, relay, 'bad_digest');
    t.deepEqual(await store.listParts({ key, uploadId }), []);
  });

  test(title('a signed x-amz-checksum-sha256 is enforced when the store says it is'), async (t) => {
    const { key, uploadId } = await newUpload();
    const body = randomBytes(2048);
    const [req] = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 300,
      parts: [{ partNumber: 1, contentLength: body.length, sha256: sha256Base64(randomBytes(8)) }],
    });
    const res = await sendRaw('PUT', req!.url, req!.headers, body);
    if (store.capabilities.verifiesSha256) {
      t.is(res.status, 400, res.body.toString());
    } else {
      t.log(`store does not claim to verify SHA-256; a wrong one got HTTP ${res.status}`);
      t.pass();
    }
  });

  test(title('presigned URLs expire and are bound to their method'), async (t) => {
    const { key, uploadId } = await newUpload();
    const body = randomBytes(10);
    const [put] = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 1,
      parts: [{ partNumber: 1, contentLength: body.length }],
    });
    const [longPut] = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 300,
      parts: [{ partNumber: 1, contentLength: body.length }],
    });
    // A PUT URL cannot be used to read: the HTTP method is part of the signature (S3: 403
    // SignatureDoesNotMatch; the disk store has no GET route there: 405).
    const misused = await sendRaw('GET', longPut!.url, {});
    t.true(misused.status === 403 || misused.status === 405, `status ${misused.status}`);
    await sleep(2500);
    const res = await sendRaw('PUT', put!.url, put!.headers, body);
    t.is(res.status, 403, res.body.toString()); // S3: 403 AccessDenied "Request has expired"
    t.deepEqual(await store.listParts({ key, uploadId }), []);
  });

  test(title('complete checks ETags, part order and the 5 MiB minimum'), async (t) => {
    const { key, uploadId } = await newUpload();
    // Two parts big enough to be non-last, two that are not: each rule can then fail on its own.
    const sizes = [5 * MiB, 5 * MiB, 1024, 1024];
    const etags: string[] = [];
    for (const [i, size] of sizes.entries()) {
      const body = randomBytes(size);
      etags.push((await store.uploadPart({ key, uploadId, partNumber: i + 1, body, contentLength: size })).etag);
    }
    const list = (...numbers: number[]) => numbers.map((n) => ({ partNumber: n, etag: etags[n - 1]! }));
    const complete = (parts: Array<{ partNumber: number; etag: string }>) =>
      store.completeMultipartUpload({ key, uploadId, parts });
    await rejectsWith(t, complete([{ partNumber: 1, etag: '"0123456789abcdef0123456789abcdef"' }]), 'invalid_part');
    await rejectsWith(t, complete([...list(1), { partNumber: 5, etag: etags[0]! }]), 'invalid_part');
    await rejectsWith(t, complete(list(2, 1)), 'invalid_part');
    await rejectsWith(t, complete([]), 'invalid_part');
    // Every stored part is listed: Ceph RGW 16 rejects a list that skips a stored part (InvalidPart).
    await rejectsWith(t, complete(list(1, 2, 3, 4)), 'entity_too_small');
    // Nothing was consumed by the failed attempts: every part is still there.
    t.is((await store.listParts({ key, uploadId })).length, 4);
  });

  test(title('abort discards the upload and is idempotent'), async (t) => {
    const { key, uploadId } = await newUpload();
    const body = randomBytes(100);
    const { etag } = await store.uploadPart({ key, uploadId, partNumber: 1, body, contentLength: body.length });
    await store.abortMultipartUpload({ key, uploadId });
    await rejectsWith(t, store.listParts({ key, uploadId }), 'no_such_upload');
    await rejectsWith(
      t,
      store.uploadPart({ key, uploadId, partNumber: 2, body, contentLength: body.length }),
      'no_such_upload',
    );
    await rejectsWith(
      t,
      store.completeMultipartUpload({ key, uploadId, parts: [{ partNumber: 1, etag }] }),
      'no_such_upload',
    );
    await t.notThrowsAsync(store.abortMultipartUpload({ key, uploadId }));
    t.is(await store.headObject(key), null);
  });

  test(title('a zero-byte object from one empty part'), async (t) => {
    const { key, uploadId } = await newUpload();
    const empty = Buffer.alloc(0);
    const [req] = await store.presignUploadParts({
      key,
      uploadId,
      expiresInSeconds: 300,
      parts: [{ partNumber: 1, contentLength: 0, md5: md5Base64(empty) }],
    });
    const res = await putPresigned(req!, empty);
    t.is(res.status, 200, await res.text());
    const etag = res.headers.get('etag')!;
    t.is(etag, `"${md5Hex(empty)}"`);
    t.deepEqual(await store.listParts({ key, uploadId }), [{ partNumber: 1, etag, size: 0 }]);
    const done = await store.completeMultipartUpload({ key, uploadId, parts: [{ partNumber: 1, etag }] });
    t.deepEqual(done, { etag: multipartEtag([empty]), size: 0 });
    t.is((await store.headObject(key))?.size, 0);
    const got = await store.getObject({ key });
    t.is(got.contentLength, 0);
    t.is((await readAll(got.body)).length, 0);
    await rejectsWith(t, store.getObject({ key, range: { start: 0, end: 0 } }), 'invalid_range');
  });

  test(title('missing objects: head is null, get is not_found, delete succeeds'), async (t) => {
    const key = newKey();
    t.is(await store.headObject(key), null);
    await rejectsWith(t, store.getObject({ key }), 'not_found');
    await t.notThrowsAsync(store.deleteObject(key));
    await t.notThrowsAsync(store.checkReady());
  });
}
