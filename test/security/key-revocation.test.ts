import test from 'ava';
import { runAdmin } from '../helpers/admin-cli.ts';
import { callApi } from '../helpers/api-client.ts';
import { startTestServer, type TestServer } from '../helpers/app.ts';

const admin = (srv: TestServer, ...args: string[]) => runAdmin(srv, args);

const list = (srv: TestServer, key: string) => callApi(srv.url, 'GET', '/v1/uploads', key);

test('a key revoked with `admin keys revoke` is refused on its very next request', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const created = await admin(srv, 'keys', 'create', 'carol', '--label', 'ci');
  t.is(created.code, 0, created.stderr);
  const { id, key, principal, admin: isAdmin } = JSON.parse(created.stdout);
  t.is(principal, 'carol');
  t.false(isAdmin);
  // Warm every path a cache could sit on: several successful requests in a row.
  for (let i = 0; i < 3; i++) t.is((await list(srv, key)).status, 200);
  const revoked = await admin(srv, 'keys', 'revoke', String(id));
  t.is(revoked.code, 0, revoked.stderr);
  const next = await list(srv, key);
  t.is(next.status, 401);
  t.is(next.body.error.code, 'unauthorized');
  t.is((await list(srv, srv.keys.alice)).status, 200, 'other keys are untouched');
  // The CLI's key changes are audited, without the key.
  const audit = await admin(srv, 'audit', '--principal', 'carol', '--json');
  t.is(audit.code, 0, audit.stderr);
  const rows = audit.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.deepEqual(
    rows.map((r) => r.action),
    ['key.revoke', 'key.create'],
  );
  t.regex(rows[0].principal, /^cli:/);
  t.is(rows[0].target, 'carol');
  t.false(audit.stdout.includes(key), 'the audit log never holds the key');
});

test('admin endpoints: create and revoke keys (revocation at once), audited; non-admins get 404', async (t) => {
  const srv = await startTestServer();
  t.teardown(() => srv.close());
  const created = await admin(srv, 'keys', 'create', 'ops', '--admin');
  t.is(created.code, 0, created.stderr);
  const adminKey = JSON.parse(created.stdout).key as string;

  const made = await callApi(srv.url, 'POST', '/v1/admin/keys', adminKey, { principal: 'dave', label: 'laptop' });
  t.is(made.status, 201);
  t.is(made.headers.get('cache-control'), 'no-store');
  t.like(made.body, { principal: 'dave', label: 'laptop', admin: false });
  const daveKey = made.body.key as string;
  t.is((await list(srv, daveKey)).status, 200);

  const keys = await callApi(srv.url, 'GET', '/v1/admin/keys?principal=dave', adminKey);
  t.is(keys.status, 200);
  t.is(keys.body.keys.length, 1);
  t.false(JSON.stringify(keys.body).includes(daveKey), 'a listing never shows a key');
  t.false('keyHash' in keys.body.keys[0]);

  t.is((await callApi(srv.url, 'DELETE', `/v1/admin/keys/${made.body.id}`, adminKey)).status, 204);
  t.is((await list(srv, daveKey)).status, 401, 'the very next request after the revoke is refused');
  const again = await callApi(srv.url, 'DELETE', `/v1/admin/keys/${made.body.id}`, adminKey);
  t.is(again.status, 404);

  // A tenant key (dave's own, alice's) sees no admin surface at all.
  for (const [method, p] of [
    ['GET', '/v1/admin/audit'],
    ['GET', '/v1/admin/keys'],
    ['POST', '/v1/admin/keys'],
    ['DELETE', '/v1/admin/keys/1'],
  ] as const) {
    const res = await callApi(
      srv.url,
      method,
      p,
      srv.keys.alice,
      method === 'POST' ? { principal: 'alice' } : undefined,
    );
    t.is(res.status, 404, `${method} ${p}`);
    t.is(res.body.error.code, 'not_found');
  }
  t.is((await callApi(srv.url, 'GET', '/v1/admin/audit', 'cvk_not-a-key-at-all-0123456789')).status, 401);

  const audit = await callApi(srv.url, 'GET', '/v1/admin/audit?principal=dave', adminKey);
  t.deepEqual(
    audit.body.entries.map((e: { action: string; principal: string }) => [e.action, e.principal]),
    [
      ['key.revoke', 'ops'],
      ['key.create', 'ops'],
    ],
  );
  t.false(JSON.stringify(audit.body).includes(daveKey));
});
