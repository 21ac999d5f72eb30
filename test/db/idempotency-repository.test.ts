import test from 'ava';
import { IdempotencyRepository } from '../../db/idempotency-repository.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let tdb: TestDatabase;
let repo: IdempotencyRepository;
test.before(async () => {
  tdb = await createTestDatabase();
  repo = new IdempotencyRepository(tdb.db);
});
test.after.always(() => tdb?.drop());

const claim = (key: string, requestHash = 'h1', principal = 'alice', scope = 'POST /v1/uploads', token = 't1') =>
  repo.claim({ principal, key, scope, requestHash, ttlSeconds: 86400, token });

test('first use claims; a repeat replays the stored response; another body is a mismatch', async (t) => {
  t.deepEqual(await claim('k1'), { state: 'claimed' });
  t.deepEqual(await claim('k1'), { state: 'in_progress' });
  await repo.complete('alice', 'k1', 201, { uploadId: 'u1' });
  t.deepEqual(await claim('k1'), { state: 'replay', status: 201, body: { uploadId: 'u1' } });
  t.deepEqual(await claim('k1', 'other-body'), { state: 'mismatch' });
  t.deepEqual(await claim('k1', 'h1', 'alice', 'DELETE /v1/uploads/x'), { state: 'mismatch' });
});

test('keys are scoped per principal', async (t) => {
  t.deepEqual(await claim('shared', 'h1', 'alice'), { state: 'claimed' });
  t.deepEqual(await claim('shared', 'h2', 'bob'), { state: 'claimed' });
});

test('concurrent first uses: exactly one claims', async (t) => {
  const results = await Promise.all(Array.from({ length: 10 }, () => claim('race')));
  t.is(results.filter((r) => r.state === 'claimed').length, 1);
  t.true(results.every((r) => r.state === 'claimed' || r.state === 'in_progress'));
});

test('a released claim can be claimed again; an expired record is replaced', async (t) => {
  await claim('k2');
  await repo.release('alice', 'k2', 't1');
  t.deepEqual(await claim('k2', 'new-body'), { state: 'claimed' });

  await repo.claim({ principal: 'alice', key: 'k3', scope: 's', requestHash: 'h', ttlSeconds: 0, token: 'a' });
  await repo.complete('alice', 'k3', 200, {});
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(
    await repo.claim({ principal: 'alice', key: 'k3', scope: 's', requestHash: 'other', ttlSeconds: 60, token: 'b' }),
    {
      state: 'claimed',
    },
  );
  t.true((await repo.purgeExpired()) >= 0);
});

test("release frees only the claim made with its token: never another request's, nor a stored response", async (t) => {
  t.deepEqual(await claim('k4', 'h1', 'alice', 'POST /v1/uploads', 'mine'), { state: 'claimed' });
  await repo.release('alice', 'k4', 'someone-else');
  t.deepEqual(await claim('k4'), { state: 'in_progress' }, 'still held by its owner');
  await repo.release('alice', 'k4', 'mine');
  t.deepEqual(await claim('k4', 'h1', 'alice', 'POST /v1/uploads', 'next'), { state: 'claimed' });
  await repo.complete('alice', 'k4', 201, { ok: true });
  await repo.release('alice', 'k4', 'next');
  t.deepEqual(await claim('k4'), { state: 'replay', status: 201, body: { ok: true } }, 'a stored response stays');
});
