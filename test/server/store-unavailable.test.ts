import test from 'ava';
import { freePort } from '../../server/embedded.ts';
import { callApi } from '../helpers/api-client.ts';
import { startTestServer } from '../helpers/app.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * An S3 endpoint that accepts connections and never answers (a hung gateway, a full Ceph OSD),
 * or one nothing listens on: the coordinator answers `503 object_store_unavailable` with
 * Retry-After within S3_REQUEST_TIMEOUT_SECONDS instead of holding the request, and records nothing.
 */
const s3Env = (endpoint: string) => ({
  S3_ENDPOINT: endpoint,
  S3_BUCKET: 'conveyor-unreachable',
  S3_FORCE_PATH_STYLE: 'true',
  S3_REQUEST_TIMEOUT_SECONDS: '1',
});
// The S3 client takes credentials from the process (the default provider chain) and signs with
// them; none are checked here, since no request is ever answered. (Each ava file has its own process.)
process.env.AWS_ACCESS_KEY_ID ??= 'unreachable-test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'unreachable-test';

for (const kind of ['stalled', 'refusing'] as const) {
  test(`an S3 endpoint that is ${kind}: init answers 503 object_store_unavailable with Retry-After, and records nothing`, async (t) => {
    const proxy = kind === 'stalled' ? await startTcpProxy({ host: '127.0.0.1', port: await freePort() }) : undefined;
    if (proxy) proxy.mode = 'stall';
    const endpoint = proxy ? `http://127.0.0.1:${proxy.port}` : `http://127.0.0.1:${await freePort()}`;
    // The AWS SDK's own retries apply to the whole call too: keep them few.
    const previous = process.env.AWS_MAX_ATTEMPTS;
    process.env.AWS_MAX_ATTEMPTS = '1';
    const srv = await startTestServer({ store: 's3', env: s3Env(endpoint) }).finally(() => {
      if (previous === undefined) delete process.env.AWS_MAX_ATTEMPTS;
      else process.env.AWS_MAX_ATTEMPTS = previous;
    });
    t.teardown(async () => {
      await srv.close();
      await proxy?.close();
    });
    const started = Date.now();
    const res = await callApi(srv.url, 'POST', '/v1/uploads', srv.keys.alice, { fileName: 'a.bin', fileSize: 10 });
    const took = Date.now() - started;
    t.is(res.status, 503, JSON.stringify(res.body));
    t.is(res.body.error.code, 'object_store_unavailable');
    t.regex(res.headers.get('retry-after') ?? '', /^\d+$/);
    t.true(took < 8_000, `answered after ${took} ms`);
    const list = await callApi(srv.url, 'GET', '/v1/uploads', srv.keys.alice);
    t.is(list.status, 200);
    t.deepEqual(
      list.body.uploads.filter((u: { status: string }) => u.status !== 'ABORTED' && u.status !== 'FAILED'),
      [],
      'no open upload left behind',
    );
  });
}
