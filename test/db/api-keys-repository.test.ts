import test from 'ava';
import { ApiKeysRepository, hashApiKey } from '../../db/api-keys-repository.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let tdb: TestDatabase;
let keys: ApiKeysRepository;
test.before(async () => {
  tdb = await createTestDatabase();
  keys = new ApiKeysRepository(tdb.db);
});
test.after.always(() => tdb?.drop());

test('keys are stored hashed; the plain key is returned once and authenticates', async (t) => {
  const { key, row } = await keys.create('alice', { label: 'laptop' });
  t.regex(key, /^cvk_[A-Za-z0-9_-]{43}$/);
  const { rows } = await tdb.pool.query('SELECT * FROM api_keys WHERE id = $1', [row.id]);
  t.false(JSON.stringify(rows).includes(key), 'the plain key is nowhere in the row');
  t.is(rows[0].key_hash, hashApiKey(key));
  t.deepEqual(await keys.authenticate(key), { id: row.id, principal: 'alice', admin: false });
  t.is(await keys.authenticate(`${key}x`), null);
  t.is(await keys.authenticate(''), null);
});

test('a revoked key stops working at once and revoking twice reports nothing to do', async (t) => {
  const { key, row } = await keys.create('bob');
  t.true(await keys.revoke(row.id));
  t.is(await keys.authenticate(key), null);
  t.false(await keys.revoke(row.id));
});

test('seeding is idempotent, does not resurrect a revoked key, and refuses a key owned by someone else', async (t) => {
  const key = 'carol-key-0123456789abcdef';
  t.true(await keys.seed('carol', key));
  t.true(await keys.seed('carol', key));
  const mine = (await keys.list('carol')).filter((k) => k.keyHash === hashApiKey(key));
  t.is(mine.length, 1);
  await keys.revoke(mine[0]!.id);
  await keys.seed('carol', key);
  t.is(await keys.authenticate(key), null, 'revocation outlives a restart that seeds again');
  t.false(await keys.seed('dave', key));
});

test('touch records last use', async (t) => {
  const { key, row } = await keys.create('erin');
  const auth = await keys.authenticate(key);
  await keys.touch(auth!.id);
  const [listed] = (await keys.list('erin')).filter((k) => k.id === row.id);
  t.truthy(listed?.lastUsedAt);
});
