import { createHash, randomBytes } from 'node:crypto';
import test from 'ava';
import { callApi, chunkOf, initUpload } from '../helpers/api-client.ts';
import { s3Configured, startTestServer, type TestServer } from '../helpers/app.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { readAll } from '../storage/object-store-http.ts';

const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('base64');

/** PUTs one chunk through the coordinator (the relay path), as a client without S3 access does. */
function relayPut(srv: TestServer, uploadId: string, i: number, body: Buffer, headers: Record<string, string> = {}) {
  return fetch(`${srv.url}/v1/uploads/${uploadId}/chunks/${i}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${srv.keys.alice}`, 'content-type': 'application/octet-stream', ...headers },
    body: Uint8Array.from(body),
  });
}

async function stored(srv: TestServer, uploadId: string): Promise<Buffer> {
  const row = await srv.app.repos.uploads.get(uploadId, 'alice');
  return readAll((await srv.store.getObject({ key: row!.objectKey })).body);
}

async function metric(srv: TestServer, pattern: RegExp): Promise<number> {
  const m = pattern.exec(await (await fetch(`${srv.url}/metrics`)).text());
  return m ? Number(m[1]) : 0;
}

for (const store of s3Configured() ? (['disk', 's3'] as const) : (['disk'] as const)) {
  const title = (s: string) => `[${store}] ${s}`;

  test(title('relay: chunks PUT through the coordinator complete byte-identical, with relay metrics'), async (t) => {
    // A 6 MiB memory budget: the second 5 MiB chunk arriving while the first is held is spooled to disk.
    const srv = await startTestServer({ store, env: { RELAY_MEMORY_BUDGET: String(6 * MiB) } });
    t.teardown(() => srv.close());
    const file = randomBytes(11 * MiB + 7);
    const u = await initUpload(srv.url, srv.keys.alice, file);
    const puts = await Promise.all(
      [0, 1, 2].map((i) =>
        relayPut(srv, u.uploadId, i, chunkOf(file, u.chunkSize, i), {
          'content-md5': md5(chunkOf(file, u.chunkSize, i)),
        }),
      ),
    );
    for (const [i, res] of puts.entries()) {
      t.is(res.status, 200);
      t.like(await res.json(), { chunkIndex: i, size: chunkOf(file, u.chunkSize, i).length });
    }
    const status = await callApi(srv.url, 'GET', `/v1/uploads/${u.uploadId}`, srv.keys.alice);
    t.like(status.body, { status: 'IN_PROGRESS', uploadedChunks: 3, missingChunks: [] });
    t.is((await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice)).status, 200);
    t.true((await stored(srv, u.uploadId)).equals(file));
    t.is(await metric(srv, /^chunks_uploaded_total\{path="relay"\} (\d+)/m), 3);
    t.is(await metric(srv, /^bytes_uploaded_total\{path="relay"\} (\d+)/m), file.length);
    t.is(await metric(srv, /^chunk_upload_duration_seconds_count\{path="relay"\} (\d+)/m), 3);
    t.is(await metric(srv, /^inflight_chunks (\d+)/m), 0);
  });

  test(title('relay refusals: bad length, digest, index or state each get their 4xx and change nothing'), async (t) => {
    const srv = await startTestServer({ store });
    t.teardown(() => srv.close());
    const file = randomBytes(6 * MiB);
    const u = await initUpload(srv.url, srv.keys.alice, file);
    const c0 = chunkOf(file, u.chunkSize, 0);
    const expectError = async (res: Response, status: number, code: string) => {
      t.is(res.status, status, code);
      t.is(((await res.json()) as { error: { code: string } }).error.code, code);
    };
    await expectError(await relayPut(srv, u.uploadId, 0, c0.subarray(1)), 400, 'content_length_mismatch');
    await expectError(
      await relayPut(srv, u.uploadId, 0, c0, { 'content-md5': md5(randomBytes(8)) }),
      400,
      'bad_digest',
    );
    await expectError(await relayPut(srv, u.uploadId, 0, c0, { 'content-md5': 'nope' }), 400, 'invalid_request');
    await expectError(await relayPut(srv, u.uploadId, 2, c0), 422, 'chunk_index_out_of_range');
    await expectError(await relayPut(srv, u.uploadId, -1, c0), 400, 'invalid_request');
    const other = await fetch(`${srv.url}/v1/uploads/${u.uploadId}/chunks/0`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${srv.keys.bob}` },
      body: Uint8Array.from(c0),
    });
    await expectError(other, 404, 'upload_not_found');
    t.deepEqual(await srv.app.repos.uploads.listChunks(u.uploadId), [], 'nothing recorded');
    t.is((await srv.app.repos.uploads.get(u.uploadId, 'alice'))?.status, 'INITIATED');
    t.is(await metric(srv, /^inflight_chunks (\d+)/m), 0, 'refusals hold no slot');
    t.is((await callApi(srv.url, 'DELETE', `/v1/uploads/${u.uploadId}`, srv.keys.alice)).status, 204);
    await expectError(await relayPut(srv, u.uploadId, 0, c0), 409, 'upload_not_in_progress');
  });
}

test(`[${s3Configured() ? 's3' : 'disk'}] 100 concurrent relay uploads: a full queue answers 429, a retrying client completes them all`, async (t) => {
  t.timeout(180_000);
  const srv = await startTestServer({
    store: s3Configured() ? 's3' : 'disk',
    env: {
      TASK_QUEUE_SIZE: '8',
      MIN_WORKERS: '2',
      MAX_WORKERS: '4',
      RATE_LIMIT_BURST: '100000',
      RATE_LIMIT_PER_SECOND: '100000',
    },
  });
  t.teardown(() => srv.close());
  let throttled = 0;
  const files = Array.from({ length: 100 }, () => randomBytes(256 * 1024 + Math.floor(Math.random() * 1000)));
  /** Repeats a request while it is answered 429, as a polite client would (the wait shortened here). */
  const retrying = async (send: () => Promise<{ status: number; headers: Headers }>) => {
    for (;;) {
      const res = await send();
      if (res.status !== 429) return res;
      throttled++;
      t.truthy(res.headers.get('retry-after'));
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
    }
  };
  const ids = await Promise.all(
    files.map(async (file) => {
      const init = await retrying(() =>
        callApi(srv.url, 'POST', '/v1/uploads', srv.keys.alice, { fileName: 'f', fileSize: file.length }),
      );
      t.is(init.status, 201);
      const uploadId = (init as unknown as { body: { uploadId: string } }).body.uploadId;
      const put = await retrying(() => relayPut(srv, uploadId, 0, file));
      t.is(put.status, 200, await (put as Response).text());
      const done = await retrying(() => callApi(srv.url, 'POST', `/v1/uploads/${uploadId}/complete`, srv.keys.alice));
      t.is(done.status, 200, JSON.stringify((done as unknown as { body: unknown }).body));
      return uploadId;
    }),
  );
  t.log(`429 answers: ${throttled}`);
  t.true(throttled > 0, 'the bounded queue pushed back');
  for (const [i, id] of ids.entries()) {
    if (!(await stored(srv, id)).equals(files[i]!)) t.fail(`upload ${i} differs`);
  }
  t.true((await metric(srv, /^throttled_requests_total\{limit="task_queue"\} (\d+)/m)) > 0);
});

if (s3Configured()) {
  test('[s3] transient S3 faults on UploadPart are retried by the relay and counted in retries_total', async (t) => {
    const proxy = await startFaultProxy(process.env.S3_ENDPOINT!, {
      errorRate: 0.3,
      resetRate: 0.1,
      only: (req) => req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? ''),
      keepHost: true,
      seed: 7,
    });
    t.teardown(() => proxy.close());
    const srv = await startTestServer({ store: 's3', env: { S3_ENDPOINT: proxy.url, MAX_RETRIES: '10' } });
    t.teardown(() => srv.close());
    const file = randomBytes(5 * MiB * 3 + 99);
    const u = await initUpload(srv.url, srv.keys.alice, file);
    for (let i = 0; i < u.totalChunks; i++) {
      const res = await relayPut(srv, u.uploadId, i, chunkOf(file, u.chunkSize, i));
      t.is(res.status, 200, await res.clone().text());
    }
    t.is((await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice)).status, 200);
    t.true((await stored(srv, u.uploadId)).equals(file));
    const injected = proxy.counts.faults.error + proxy.counts.faults.reset;
    t.log(`faults injected: ${JSON.stringify(proxy.counts.faults)}`);
    t.true(injected > 0);
    t.is(await metric(srv, /^retries_total\{path="relay"\} (\d+)/m), injected, 'every injected fault was one retry');
  });
}
