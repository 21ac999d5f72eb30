import http from 'node:http';
import test from 'ava';
import { BODY_LIMITS, DEFAULT_BODY_LIMIT } from '../../server/http/body-limits.ts';
import { callApi, initUpload } from '../helpers/api-client.ts';
import { startTestServer, type TestServer } from '../helpers/app.ts';

let srv: TestServer;
let adminKey: string;
let uploadId: string;
test.before(async () => {
  srv = await startTestServer();
  adminKey = (await srv.app.repos.apiKeys.create('ops', { admin: true })).key;
  uploadId = (await initUpload(srv.url, srv.keys.alice, Buffer.alloc(6 * 1024 * 1024))).uploadId;
});
test.after.always(() => srv?.close());

/** A syntactically valid JSON object of exactly `bytes` bytes. */
const jsonOf = (bytes: number) => `{"pad":"${'x'.repeat(bytes - 10)}"}`;

const limitOf = (method: string, path: string) =>
  BODY_LIMITS.find((r) => r.method === method && r.path.test(path))?.limit ?? DEFAULT_BODY_LIMIT;

/** Sends `body` raw (Content-Length, or chunked) and returns status and parsed JSON. */
function send(method: string, path: string, key: string, body: string, chunked = false) {
  return new Promise<{ status: number; body: { error?: { code: string } } }>((resolve, reject) => {
    const url = new URL(path, srv.url);
    const req = http.request(url, {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        ...(chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(body) }),
      },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : {} }));
    });
    // The server may answer 413 and close before the whole body is written.
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : reject(err)));
    if (chunked) {
      for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.slice(i, i + 64 * 1024));
      req.end();
    } else req.end(body);
  });
}

const endpoints = () =>
  [
    ['POST', '/v1/uploads', srv.keys.alice],
    ['POST', `/v1/uploads/${uploadId}/chunks/presign`, srv.keys.alice],
    ['PATCH', `/v1/uploads/${uploadId}/chunks/0`, srv.keys.alice],
    ['POST', `/v1/uploads/${uploadId}/complete`, srv.keys.alice],
    ['DELETE', `/v1/uploads/${uploadId}`, srv.keys.alice],
    ['GET', '/v1/uploads', srv.keys.alice],
    ['POST', '/v1/admin/keys', adminKey],
    ['PUT', '/v1/admin/principals/alice/quota', adminKey],
  ] as const;

test.serial(
  'every JSON endpoint refuses a body one byte over its limit with 413 payload_too_large, and changes nothing',
  async (t) => {
    for (const [method, path, key] of endpoints()) {
      const limit = limitOf(method, path);
      t.true(limit <= 1024 * 1024, `${method} ${path}: limit ${limit}`);
      const before = await srv.tdb.pool.query(
        'SELECT (SELECT count(*) FROM uploads) u, (SELECT count(*) FROM api_keys) k',
      );
      for (const chunked of [false, true]) {
        const res = await send(method, path, key, jsonOf(limit + 1), chunked);
        t.is(res.status, 413, `${method} ${path} (${chunked ? 'chunked' : 'Content-Length'})`);
        t.is(res.body.error?.code, 'payload_too_large');
      }
      const after = await srv.tdb.pool.query(
        'SELECT (SELECT count(*) FROM uploads) u, (SELECT count(*) FROM api_keys) k',
      );
      t.deepEqual(after.rows, before.rows, `${method} ${path}: no state change`);
    }
    const status = await callApi(srv.url, 'GET', `/v1/uploads/${uploadId}`, srv.keys.alice);
    t.is(status.body.status, 'INITIATED', 'the upload was neither completed nor aborted');
  },
);

test.serial('a body at the limit is read (and judged on its content, not its size)', async (t) => {
  for (const [method, path, key] of endpoints()) {
    const res = await send(method, path, key, jsonOf(limitOf(method, path)));
    t.not(res.status, 413, `${method} ${path}`);
  }
});

test.serial('the limits fit the largest legal requests: a maximal init and a 100-chunk presign pass', async (t) => {
  const metadata = Object.fromEntries(
    Array.from({ length: 32 }, (_, i) => [`k${String(i).padStart(62, '0')}`, '\u00e9'.repeat(1024)]),
  );
  const init = await callApi(srv.url, 'POST', '/v1/uploads', srv.keys.bob, {
    fileName: '\u00e9'.repeat(1024),
    fileSize: 100 * 1024 * 1024 * 1024,
    metadata,
  });
  t.is(init.status, 201);
  const md5 = 'AAAAAAAAAAAAAAAAAAAAAA==';
  const sha256 = `${'A'.repeat(43)}=`;
  const presign = await callApi(srv.url, 'POST', `/v1/uploads/${init.body.uploadId}/chunks/presign`, srv.keys.bob, {
    chunks: Array.from({ length: 100 }, (_, i) => ({ chunkIndex: i, md5, sha256 })),
  });
  t.not(presign.status, 413);
});
