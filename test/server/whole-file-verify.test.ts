import { randomBytes } from 'node:crypto';
import test from 'ava';
import type { PresignedRequest } from '../../server/storage/object-store.ts';
import { partsMatchDeclaredMd5 } from '../../server/uploads/upload-service.ts';
import { callApi, chunkOf, initUpload, sendChunks } from '../helpers/api-client.ts';
import { s3Configured, startTestServer, type TestServer } from '../helpers/app.ts';
import { md5Base64, putPresigned, readAll, sha256Base64 } from '../storage/object-store-http.ts';

const MiB = 1024 * 1024;
const hex = (b64: string) => Buffer.from(b64, 'base64').toString('hex');

test('partsMatchDeclaredMd5: every part ETag must be its chunk’s declared MD5', (t) => {
  const a = md5Base64(Buffer.from('a'));
  const b = md5Base64(Buffer.from('b'));
  const rows = [
    { chunkIndex: 0, md5: a },
    { chunkIndex: 1, md5: b },
  ];
  t.true(
    partsMatchDeclaredMd5(
      [
        { partNumber: 1, etag: `"${hex(a)}"` },
        { partNumber: 2, etag: hex(b).toUpperCase() },
      ],
      rows,
    ),
  );
  t.false(partsMatchDeclaredMd5([{ partNumber: 1, etag: `"${hex(b)}"` }], rows), 'another MD5');
  t.false(partsMatchDeclaredMd5([{ partNumber: 3, etag: `"${hex(a)}"` }], rows), 'a chunk with no row');
  t.false(partsMatchDeclaredMd5([{ partNumber: 1, etag: `"${hex(a)}"` }], [{ chunkIndex: 0, md5: null }]), 'no MD5');
  t.false(partsMatchDeclaredMd5([{ partNumber: 1, etag: '"not-an-md5-etag"' }], rows), 'an SSE-KMS style ETag');
  t.false(partsMatchDeclaredMd5([], rows), 'no parts');
});

/** WHOLE_FILE_VERIFY=parts against each store: when it skips the read-back, and when it does not. */
for (const store of s3Configured() ? (['disk', 's3'] as const) : (['disk'] as const)) {
  let srv: TestServer;
  const title = (s: string) => `[${store}] WHOLE_FILE_VERIFY=parts: ${s}`;

  test.before(async () => {
    srv = await startTestServer({ store, env: { WHOLE_FILE_VERIFY: 'parts' } });
  });
  test.after.always(() => srv?.close());

  /** Counts the coordinator's whole-object reads during `fn`. */
  async function reads<T>(fn: () => Promise<T>): Promise<{ result: T; gets: number }> {
    let gets = 0;
    const real = srv.store.getObject.bind(srv.store);
    srv.store.getObject = (input, signal) => {
      if (!input.range) gets++;
      return real(input, signal);
    };
    try {
      return { result: await fn(), gets };
    } finally {
      srv.store.getObject = real;
    }
  }
  const verifications = async (method: string) => {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    const m = new RegExp(`^whole_file_verifications_total\\{method="${method}"\\} (\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };

  test.serial(title('chunks presigned with their MD5 complete without reading the object back'), async (t) => {
    const file = randomBytes(12 * MiB + 123);
    const u = await initUpload(srv.url, srv.keys.alice, file, { checksumSha256: sha256Base64(file) });
    await sendChunks(srv.url, srv.keys.alice, u, file, [0, 1, 2]);
    const before = await verifications('parts');
    const { result: done, gets } = await reads(() =>
      callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice),
    );
    t.is(done.status, 200, JSON.stringify(done.body));
    t.is(done.body.checksumSha256, sha256Base64(file));
    t.is(gets, 0, 'no read-back');
    t.is(await verifications('parts'), before + 1);
    const row = await srv.app.repos.uploads.get(u.uploadId, 'alice');
    const { body } = await srv.store.getObject({ key: row!.objectKey });
    t.true((await readAll(body)).equals(file), 'byte-identical');
  });

  test.serial(
    title('a chunk presigned without an MD5 makes it read back, which catches a wrong checksum'),
    async (t) => {
      const file = randomBytes(6 * MiB);
      const u = await initUpload(srv.url, srv.keys.alice, file, { checksumSha256: sha256Base64(randomBytes(8)) });
      await sendChunks(srv.url, srv.keys.alice, u, file, [0]);
      // Chunk 1 the way a plain REST caller may send it: no md5 in the presign, so nothing was declared.
      const presign = await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/chunks/presign`, srv.keys.alice, {
        chunks: [{ chunkIndex: 1 }],
      });
      t.is(presign.status, 200, JSON.stringify(presign.body));
      const [c] = presign.body.chunks as Array<PresignedRequest & { chunkIndex: number }>;
      t.is((await putPresigned({ ...c!, expiresAt: new Date() }, chunkOf(file, u.chunkSize, 1))).status, 200);
      const before = await verifications('read-back');
      const { result: res, gets } = await reads(() =>
        callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice),
      );
      t.is(res.status, 422, JSON.stringify(res.body));
      t.is(res.body.error.code, 'checksum_mismatch');
      t.is(gets, 1, 'read back once');
      t.is(await verifications('read-back'), before + 1);
      t.is((await srv.app.repos.uploads.get(u.uploadId, 'alice'))?.status, 'FAILED');
    },
  );
}
