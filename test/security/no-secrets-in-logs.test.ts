import { randomBytes } from 'node:crypto';
import test from 'ava';
import { seedApiKeys } from '../../server/bootstrap.ts';
import { createLogger } from '../../server/logger.ts';
import { callApi, chunkOf, initUpload } from '../helpers/api-client.ts';
import { s3Configured, startTestServer } from '../helpers/app.ts';
import { putPresigned } from '../storage/object-store-http.ts';

const MiB = 1024 * 1024;

/** Every value in a presigned URL that grants access: SigV4 signatures, the disk store's tokens. */
function urlSecrets(url: string): string[] {
  const q = new URL(url).searchParams;
  return ['X-Amz-Signature', 'X-Amz-Security-Token', 'token'].flatMap((k) => (q.get(k) ? [q.get(k)!] : []));
}

for (const store of s3Configured() ? (['disk', 's3'] as const) : (['disk'] as const)) {
  test(`[${store}] a full run at LOG_LEVEL=trace logs no API key, signature, token or store secret`, async (t) => {
    const lines: string[] = [];
    const diskSecret = randomBytes(24).toString('hex');
    const seeded = `seeded-${randomBytes(16).toString('hex')}`;
    const srv = await startTestServer({
      store,
      env: {
        LOG_LEVEL: 'trace',
        DISK_STORE_SECRET: diskSecret,
        API_KEYS: `erin:${seeded},alice:${seeded}`,
        ADMIN_API_KEYS: `root:admin-${seeded}`,
      },
      logDestination: { write: (line) => lines.push(line) },
    });
    t.teardown(() => srv.close());
    const logger = createLogger('trace', { write: (line: string) => lines.push(line) });
    await seedApiKeys(srv.config, srv.app.repos.apiKeys, logger);
    const secrets = new Set<string>([srv.keys.alice, srv.keys.bob, seeded, `admin-${seeded}`, diskSecret]);
    if (process.env.AWS_SECRET_ACCESS_KEY) secrets.add(process.env.AWS_SECRET_ACCESS_KEY);
    if (process.env.AWS_SESSION_TOKEN) secrets.add(process.env.AWS_SESSION_TOKEN);

    const key = srv.keys.alice;
    const file = randomBytes(6 * MiB);
    const u = await initUpload(srv.url, key, file, { metadata: { note: 'ordinary' } });
    const presign = await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/chunks/presign`, key, {
      chunks: [{ chunkIndex: 0 }, { chunkIndex: 1 }],
    });
    t.is(presign.status, 200);
    for (const c of presign.body.chunks) {
      for (const s of urlSecrets(c.url)) secrets.add(s);
      const bytes = chunkOf(file, u.chunkSize, c.chunkIndex);
      const put = await putPresigned({ ...c, expiresAt: new Date() }, bytes);
      t.is(put.status, 200);
      const rep = await callApi(srv.url, 'PATCH', `/v1/uploads/${u.uploadId}/chunks/${c.chunkIndex}`, key, {
        etag: put.headers.get('etag'),
        size: bytes.length,
      });
      t.is(rep.status, 204);
    }
    t.is((await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/complete`, key)).status, 200);
    const manifest = await callApi(srv.url, 'GET', `/v1/files/${u.uploadId}`, key);
    for (const c of manifest.body.chunks) for (const s of urlSecrets(c.url)) secrets.add(s);
    await (
      await fetch(`${srv.url}/v1/files/${u.uploadId}/content`, { headers: { authorization: `Bearer ${key}` } })
    ).arrayBuffer();
    // Refusals: a wrong key, a revoked key, someone else's upload, a malformed body.
    const wrong = `cvk_${randomBytes(32).toString('base64url')}`;
    secrets.add(wrong);
    t.is((await callApi(srv.url, 'GET', '/v1/uploads', wrong)).status, 401);
    t.is((await callApi(srv.url, 'GET', `/v1/uploads/${u.uploadId}`, srv.keys.bob)).status, 404);
    t.is((await callApi(srv.url, 'POST', '/v1/uploads', key, { fileName: key, fileSize: -1 })).status, 400);
    // Key management through the admin endpoint: the new key is in the response only.
    const made = await callApi(srv.url, 'POST', '/v1/admin/keys', `admin-${seeded}`, { principal: 'frank' });
    t.is(made.status, 201);
    secrets.add(made.body.key);
    t.is((await callApi(srv.url, 'DELETE', `/v1/admin/keys/${made.body.id}`, `admin-${seeded}`)).status, 204);
    t.is((await callApi(srv.url, 'GET', '/v1/uploads', made.body.key)).status, 401);

    const text = lines.join('');
    t.true(lines.length >= 10, `the run was logged (${lines.length} lines)`);
    t.true(text.includes('"route":"/v1/uploads/:uploadId/chunks/presign"'), 'request lines are there');
    t.true(text.includes('API_KEYS entry ignored'), 'the seeding warning is there');
    for (const s of secrets) t.false(text.includes(s), `a secret (${s.slice(0, 6)}…) reached the log`);
    t.false(/X-Amz-Signature=/i.test(text), 'no presigned URL was logged');
  });
}

test('the logger redacts credentials however they are passed to it', (t) => {
  const lines: string[] = [];
  const log = createLogger('info', { write: (l: string) => lines.push(l) });
  const s = 'cvk_s3cr3t-value-that-must-not-appear';
  log.info({ req: { headers: { authorization: `Bearer ${s}` } } }, 'a');
  log.info({ headers: { authorization: `Bearer ${s}` } }, 'b');
  log.info({ apiKey: s, key: s, config: { apiKey: s, secret: s, password: s, token: s } }, 'c');
  t.is(lines.length, 3);
  t.false(lines.join('').includes(s));
  t.true(lines.join('').includes('[redacted]'));
});
