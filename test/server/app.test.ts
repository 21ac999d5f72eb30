import test from 'ava';
import { startTestServer, type TestServer } from '../helpers/app.ts';

let srv: TestServer;
test.before(async () => {
  srv = await startTestServer();
});
test.after.always(() => srv?.close());

const get = (path: string, init: RequestInit = {}) => fetch(`${srv.url}${path}`, init);
const auth = (key: string) => ({ authorization: `Bearer ${key}` });

test('healthz answers while the process is up', async (t) => {
  const res = await get('/healthz');
  t.is(res.status, 200);
  t.deepEqual(await res.json(), { status: 'ok' });
});

test('readyz checks the database and the object store', async (t) => {
  const res = await get('/readyz');
  t.is(res.status, 200);
  const body = (await res.json()) as { checks: Record<string, unknown> };
  t.like(body.checks, { database: 'ok', objectStore: 'ok', store: 'disk' });
});

test('every response carries X-Request-Id, echoing a well-formed client id and replacing a bad one', async (t) => {
  t.is((await get('/healthz', { headers: { 'x-request-id': 'abc-123' } })).headers.get('x-request-id'), 'abc-123');
  const replaced = (await get('/healthz', { headers: { 'x-request-id': 'a b\tc' } })).headers.get('x-request-id');
  t.regex(replaced ?? '', /^[0-9a-f-]{36}$/);
  t.regex((await get('/nope')).headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
});

test('metrics expose the specified metric names in Prometheus text format', async (t) => {
  await get('/healthz');
  const res = await get('/metrics');
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  for (const name of [
    'chunks_uploaded_total',
    'bytes_uploaded_total',
    'chunk_upload_failures_total',
    'retries_total',
    'task_queue_depth',
    'inflight_chunks',
    'throttled_requests_total',
    'worker_count',
    'worker_busy_count',
    'http_request_duration_seconds',
    'chunk_upload_duration_seconds',
    'object_store_request_duration_seconds',
  ]) {
    t.regex(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  t.regex(text, /http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} \d+/);
});

test('/v1 without a valid API key is 401 unauthorized in the catalogue shape', async (t) => {
  for (const headers of [{}, auth('wrong-key'), { authorization: 'Basic abc' }, { authorization: 'Bearer ' }]) {
    const res = await get('/v1/uploads', { headers });
    t.is(res.status, 401);
    t.is(res.headers.get('www-authenticate'), 'Bearer realm="conveyor"');
    const body = (await res.json()) as { error: { code: string; message: string } };
    t.is(body.error.code, 'unauthorized');
    t.is(typeof body.error.message, 'string');
  }
});

test('a revoked key is refused on its next request', async (t) => {
  const { key, row } = await srv.app.repos.apiKeys.create('carol');
  t.is((await get('/v1/uploads', { headers: auth(key) })).status, 200);
  await srv.app.repos.apiKeys.revoke(row.id);
  t.is((await get('/v1/uploads', { headers: auth(key) })).status, 401);
});

test('unknown routes are 404 not_found and wrong methods 405, both as JSON errors', async (t) => {
  const nf = await get('/no/such/thing');
  t.is(nf.status, 404);
  t.is(((await nf.json()) as { error: { code: string } }).error.code, 'not_found');
  const mna = await get('/v1/uploads', { method: 'PATCH', headers: auth(srv.keys.alice) });
  t.is(mna.status, 405);
  t.is(((await mna.json()) as { error: { code: string } }).error.code, 'method_not_allowed');
});

test("listing uploads: only the caller's, validated query, 400 invalid_request otherwise", async (t) => {
  const now = new Date();
  for (const principal of ['alice', 'bob']) {
    await srv.app.repos.uploads.create({
      id: crypto.randomUUID(),
      principal,
      fileName: `${principal}.bin`,
      fileSize: 1,
      chunkSize: 5 * 1024 * 1024,
      totalChunks: 1,
      objectKey: `k/${principal}`,
      expiresAt: new Date(now.getTime() + 60_000),
    });
  }
  const res = await get('/v1/uploads?limit=10', { headers: auth(srv.keys.alice) });
  t.is(res.status, 200);
  const body = (await res.json()) as { uploads: Array<{ fileName: string; status: string }>; nextCursor: null };
  t.deepEqual(
    body.uploads.map((u) => u.fileName),
    ['alice.bin'],
  );
  t.is(body.nextCursor, null);
  for (const q of ['limit=0', 'limit=abc', 'status=DONE', 'cursor=garbage', 'surprise=1']) {
    const bad = await get(`/v1/uploads?${q}`, { headers: auth(srv.keys.alice) });
    t.is(bad.status, 400, q);
    t.is(((await bad.json()) as { error: { code: string } }).error.code, 'invalid_request', q);
  }
});

test('readyz turns 503 and /v1 refuses work once shutdown begins', async (t) => {
  const local = await startTestServer();
  t.teardown(() => local.close());
  local.app.beginShutdown();
  const ready = await fetch(`${local.url}/readyz`);
  t.is(ready.status, 503);
  const v1 = await fetch(`${local.url}/v1/uploads`, { headers: auth(local.keys.alice) });
  t.is(v1.status, 503);
  t.is(v1.headers.get('retry-after'), '1');
});

test('readyz is 503 when the database is gone, without leaking internals', async (t) => {
  const local = await startTestServer();
  t.teardown(() => local.close());
  await local.tdb.pool.end();
  const res = await fetch(`${local.url}/readyz`);
  t.is(res.status, 503);
  const body = (await res.json()) as { checks: { database: string } };
  t.not(body.checks.database, 'ok');
});

test('GET /v1/openapi.json is an OpenAPI 3.1 document generated from the request schemas', async (t) => {
  const res = await get('/v1/openapi.json');
  t.is(res.status, 200);
  const doc = (await res.json()) as {
    openapi: string;
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
  };
  t.is(doc.openapi, '3.1.0');
  for (const path of [
    '/v1/uploads',
    '/v1/uploads/{uploadId}',
    '/v1/uploads/{uploadId}/chunks/presign',
    '/v1/uploads/{uploadId}/chunks/{chunkIndex}',
    '/v1/uploads/{uploadId}/complete',
  ]) {
    t.truthy(doc.paths[path], path);
  }
  const init = doc.paths['/v1/uploads']!.post!.requestBody!.content['application/json']!.schema as {
    required: string[];
    properties: Record<string, unknown>;
    additionalProperties: boolean;
  };
  t.deepEqual(init.required.sort(), ['fileName', 'fileSize']);
  t.false(init.additionalProperties, 'strict: unknown fields are refused, and the document says so');
  const presign = doc.paths['/v1/uploads/{uploadId}/chunks/presign']!.post!.requestBody!.content['application/json']!
    .schema as { properties: { chunks: { maxItems: number } } };
  t.is(presign.properties.chunks.maxItems, 100);
});
