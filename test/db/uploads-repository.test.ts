import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { UploadStatus } from '../../db/schema.ts';
import { InvalidCursorError, UploadsRepository } from '../../db/uploads-repository.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

let tdb: TestDatabase;
let repo: UploadsRepository;

test.before(async () => {
  tdb = await createTestDatabase();
  repo = new UploadsRepository(tdb.db);
});
test.after.always(() => tdb?.drop());

function newUpload(principal = 'alice', over: Partial<Parameters<UploadsRepository['create']>[0]> = {}) {
  const id = randomUUID();
  return repo.create({
    id,
    principal,
    fileName: 'movie.mkv',
    fileSize: 20 * 1024 * 1024,
    chunkSize: 8 * 1024 * 1024,
    totalChunks: 3,
    objectKey: `uploads/${id}`,
    expiresAt: new Date(Date.now() + 3600_000),
    ...over,
  });
}

test('an upload is only visible to the principal that created it', async (t) => {
  const u = await newUpload('alice');
  t.is((await repo.get(u.id, 'alice'))?.id, u.id);
  t.is(await repo.get(u.id, 'mallory'), null);
  t.is(u.status, 'INITIATED');
  t.is(u.fileSize, 20 * 1024 * 1024, 'BIGINT sizes come back as numbers');
});

test('the status CHECK constraint rejects values outside the state machine', async (t) => {
  const u = await newUpload();
  await t.throwsAsync(tdb.pool.query(`UPDATE uploads SET status = 'DONE' WHERE id = $1`, [u.id]), {
    message: /uploads_status_check/,
  });
  t.is((await repo.get(u.id, 'alice'))?.status, 'INITIATED');
});

test('transitions are compare-and-set: an illegal one changes nothing', async (t) => {
  const u = await newUpload();
  t.is(await repo.transition(u.id, ['IN_PROGRESS'], 'COMPLETING'), null, 'INITIATED is not IN_PROGRESS');
  const moved = await repo.transition(u.id, ['INITIATED'], 'IN_PROGRESS');
  t.is(moved?.status, 'IN_PROGRESS');
  t.true(moved!.updatedAt >= u.updatedAt);
  const aborted = await repo.transition(u.id, ['INITIATED', 'IN_PROGRESS'], 'ABORTED', { failureReason: 'user' });
  t.is(aborted?.status, 'ABORTED');
  t.is(aborted?.failureReason, 'user');
  t.is(await repo.transition(u.id, ['INITIATED', 'IN_PROGRESS'], 'ABORTED'), null, 'terminal stays terminal');
});

test('of many concurrent racers for the same transition exactly one wins', async (t) => {
  const u = await newUpload();
  await repo.transition(u.id, ['INITIATED'], 'IN_PROGRESS');
  const results = await Promise.all(
    Array.from({ length: 16 }, () => repo.transition(u.id, ['IN_PROGRESS'], 'COMPLETING')),
  );
  t.is(results.filter((r) => r !== null).length, 1);
  t.is((await repo.get(u.id, 'alice'))?.status, 'COMPLETING' satisfies UploadStatus);
});

test('endLeases without a cut-off ends every lease of that upload only', async (t) => {
  const [a, b] = [await newUpload(), await newUpload()];
  const future = new Date(Date.now() + 60_000);
  for (const u of [a, b]) {
    await repo.leaseChunks(u.id, [{ chunkIndex: 0, s3Key: u.objectKey, size: 5 }], future);
  }
  t.is(await repo.endLeases(a.id, new Date()), 0, 'not lapsed yet');
  t.is(await repo.endLeases(a.id), 1);
  t.is((await repo.listChunks(b.id))[0]?.status, 'PRESIGNED');
});

test('locked() serialises work on one upload across connections', async (t) => {
  const u = await newUpload();
  const order: string[] = [];
  await Promise.all(
    ['a', 'b', 'c'].map((name) =>
      repo.locked(u.id, async () => {
        order.push(`${name}+`);
        await new Promise((r) => setTimeout(r, 30));
        order.push(`${name}-`);
      }),
    ),
  );
  for (let i = 0; i < order.length; i += 2) t.is(order[i]![0], order[i + 1]![0], order.join(' '));
});

test('the store upload id is recorded once, while INITIATED', async (t) => {
  const u = await newUpload();
  t.is((await repo.setStoreUploadId(u.id, 'mpu-1'))?.s3UploadId, 'mpu-1');
  t.is(await repo.setStoreUploadId(u.id, 'mpu-2'), null, 'never overwritten');
  t.is((await repo.get(u.id, 'alice'))?.s3UploadId, 'mpu-1');
});

test('chunk reports are idempotent upserts that accumulate retries and keep the newest ETag', async (t) => {
  const u = await newUpload();
  const base = { chunkIndex: 1, s3Key: u.objectKey, size: 8 * 1024 * 1024 };
  await repo.markChunkUploaded(u.id, { ...base, etag: '"a"', retries: 2 });
  await repo.markChunkUploaded(u.id, { ...base, etag: '"a"' });
  const again = await repo.markChunkUploaded(u.id, { ...base, etag: '"b"', retries: 1, sha256: 'c2hh' });
  const rows = await repo.listChunks(u.id);
  t.is(rows.length, 1, 'UNIQUE (upload_id, chunk_index): one row however often reported');
  t.is(again.etag, '"b"');
  t.is(again.retryCount, 3);
  t.is(again.status, 'UPLOADED');
  t.is(again.sha256, 'c2hh');
});

test('concurrent reports of the same chunk leave exactly one row', async (t) => {
  const u = await newUpload();
  await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      repo.markChunkUploaded(u.id, { chunkIndex: 0, s3Key: u.objectKey, size: 5, etag: `"e${i}"` }),
    ),
  );
  const rows = await repo.listChunks(u.id);
  t.is(rows.length, 1);
  t.is(rows[0]?.status, 'UPLOADED');
});

test('leases: presigned chunks hold a lease, expire back to PENDING, and never demote an uploaded chunk', async (t) => {
  const u = await newUpload();
  const past = new Date(Date.now() - 1000);
  await repo.markChunkUploaded(u.id, { chunkIndex: 0, s3Key: u.objectKey, size: 5, etag: '"x"' });
  await repo.leaseChunks(
    u.id,
    [0, 1, 2].map((i) => ({ chunkIndex: i, s3Key: u.objectKey, size: 5, md5: 'bWQ1' })),
    past,
  );
  let rows = await repo.listChunks(u.id);
  t.deepEqual(
    rows.map((r) => r.status),
    ['UPLOADED', 'PRESIGNED', 'PRESIGNED'],
  );
  t.deepEqual(
    (await repo.findLapsedLeases(new Date(), 1000)).filter((l) => l.uploadId === u.id),
    [{ uploadId: u.id, principal: 'alice' }],
  );
  t.is(await repo.locked(u.id, (r) => r.endLeases(u.id, new Date())), 2, 'the two lapsed leases, not the upload');
  rows = await repo.listChunks(u.id);
  t.deepEqual(
    rows.map((r) => [r.status, r.leaseExpiresAt]),
    [
      ['UPLOADED', null],
      ['PENDING', null],
      ['PENDING', null],
    ],
  );
  t.is(rows[1]?.md5, 'bWQ1', 'the signed digest is kept');
});

test('a chunk the relay gave up on is FAILED, but an uploaded one stays uploaded', async (t) => {
  const u = await newUpload();
  await repo.markChunkFailed(u.id, 0, u.objectKey, 5);
  await repo.markChunkUploaded(u.id, { chunkIndex: 1, s3Key: u.objectKey, size: 5, etag: '"y"' });
  await repo.markChunkFailed(u.id, 1, u.objectKey, 1);
  const rows = await repo.listChunks(u.id);
  t.deepEqual(
    rows.map((r) => [r.status, r.retryCount]),
    [
      ['FAILED', 5],
      ['UPLOADED', 1],
    ],
  );
});

test('listing is newest first, paginated without gaps or repeats, and filtered by status', async (t) => {
  const principal = `lister-${randomUUID()}`;
  const created = [];
  for (let i = 0; i < 7; i++) created.push(await newUpload(principal));
  await repo.transition(created[2]!.id, ['INITIATED'], 'ABORTED');
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await repo.list({ principal, limit: 3, ...(cursor ? { cursor } : {}) });
    seen.push(...page.items.map((u) => u.id));
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  t.deepEqual(seen, created.map((u) => u.id).reverse());
  const aborted = await repo.list({ principal, limit: 10, status: 'ABORTED' });
  t.deepEqual(
    aborted.items.map((u) => u.id),
    [created[2]!.id],
  );
  await t.throwsAsync(repo.list({ principal, limit: 3, cursor: 'not-a-cursor' }), { instanceOf: InvalidCursorError });
});

test('expired non-terminal uploads are found for the sweeper; terminal ones are not', async (t) => {
  const old = new Date(Date.now() - 60_000);
  const a = await newUpload('sweep', { expiresAt: old });
  const b = await newUpload('sweep', { expiresAt: old });
  await repo.transition(b.id, ['INITIATED'], 'COMPLETING');
  const found = (await repo.findExpired(new Date(), 1000)).map((u) => u.id);
  t.true(found.includes(a.id));
  t.false(found.includes(b.id));
});

test('deleting an upload removes its chunks (foreign key cascade)', async (t) => {
  const u = await newUpload();
  await repo.markChunkUploaded(u.id, { chunkIndex: 0, s3Key: u.objectKey, size: 1, etag: '"z"' });
  await tdb.pool.query('DELETE FROM uploads WHERE id = $1', [u.id]);
  t.deepEqual(await repo.listChunks(u.id), []);
});
