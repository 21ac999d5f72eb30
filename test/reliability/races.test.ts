import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../../server/config.ts';
import { freePort } from '../../server/embedded.ts';
import { createObjectStore } from '../../server/storage/create-store.ts';
import { isObjectStoreError } from '../../server/storage/errors.ts';
import type { ObjectStore } from '../../server/storage/object-store.ts';
import { type ApiResponse, callApi, chunkOf, initUpload, sendChunks } from '../helpers/api-client.ts';
import { s3Configured } from '../helpers/app.ts';
import { type CoordinatorProcess, startCoordinatorProcess } from '../helpers/coordinator-process.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { type S3Prefix, s3Prefix } from '../helpers/s3-prefix.ts';

/**
 * Two coordinator processes on one database and one bucket; on the same upload, from several
 * clients at once and split across both: completes (some sharing an Idempotency-Key), aborts,
 * reports and presigns. After every round the end state must be legal and the store must agree:
 * COMPLETED with the whole object and no open multipart upload, or ABORTED with neither; the
 * answers must agree with it (no 200 complete on an aborted upload, no 204 abort on a completed
 * one, every 200 complete with the same ETag), and nobody gets a 5xx.
 */
const MiB = 1024 * 1024;
const ROUNDS = 20;
const store = s3Configured() ? 's3' : 'disk';

let tdb: TestDatabase;
let work: string;
let a: CoordinatorProcess;
let b: CoordinatorProcess;
let s3: S3Prefix | undefined;
let check: ObjectStore;
const key = `races-${randomBytes(12).toString('hex')}`;

test.before(async () => {
  tdb = await createTestDatabase();
  work = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-races-'));
  s3 = store === 's3' ? s3Prefix('races') : undefined;
  // Shared: the database, the bucket and prefix (or the disk store's directory and URL secret).
  const env: Record<string, string> = {
    RATE_LIMIT_PER_SECOND: '10000',
    RATE_LIMIT_BURST: '10000',
    DISK_STORE_SECRET: 'races-shared-secret-races-shared-secret',
    ...(s3 ? { S3_PREFIX: s3.prefix } : {}),
  };
  const dataDir = path.join(work, 'data');
  const [pa, pb] = [await freePort(), await freePort()];
  const opts = { databaseUrl: tdb.url, apiKeys: `alice:${key}`, store, dataDir, env } as const;
  [a, b] = await Promise.all([
    startCoordinatorProcess({ ...opts, port: pa }),
    startCoordinatorProcess({ ...opts, port: pb }),
  ]);
  const config = loadConfig({
    ...env,
    DATA_DIR: dataDir,
    DATABASE_URL: tdb.url,
    ...(s3
      ? {
          S3_ENDPOINT: process.env.S3_ENDPOINT!,
          S3_BUCKET: process.env.S3_BUCKET!,
          S3_REGION: process.env.S3_REGION ?? 'us-east-1',
          S3_FORCE_PATH_STYLE: process.env.S3_FORCE_PATH_STYLE ?? 'true',
        }
      : {}),
  });
  check = await createObjectStore(config);
});

test.after.always(async () => {
  await a?.kill();
  await b?.kill();
  await s3?.cleanup();
  await tdb?.drop();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

/** True while the store still has this multipart upload open. */
async function multipartOpen(ref: { key: string; uploadId: string }): Promise<boolean> {
  try {
    await check.listParts(ref);
    return true;
  } catch (err) {
    if (isObjectStoreError(err, 'no_such_upload')) return false;
    throw err;
  }
}

test.serial(
  `${ROUNDS} rounds of complete/abort/report/presign racing on two coordinators: always a legal end state`,
  async (t) => {
    t.timeout(240_000);
    const file = randomBytes(5 * MiB + 1024);
    const outcomes = { COMPLETED: 0, ABORTED: 0 };
    for (let round = 0; round < ROUNDS; round++) {
      const up = await initUpload(a.url, key, file);
      // Both chunks are in the store; only chunk 0 is reported (the complete reconciles chunk 1).
      await sendChunks(a.url, key, up, file, [0]);
      await sendChunks(b.url, key, up, file, [1], { report: false });
      const [row] = (
        await tdb.pool.query<{ object_key: string; s3_upload_id: string }>(
          'SELECT object_key, s3_upload_id FROM uploads WHERE id = $1',
          [up.uploadId],
        )
      ).rows;
      const ref = { key: row!.object_key, uploadId: row!.s3_upload_id };
      const completeBefore = await completeCalls();

      const id = up.uploadId;
      const at = (i: number) => (i % 2 === 0 ? a.url : b.url);
      const shared = `race-${round}`;
      // Shuffled so neither kind always starts first.
      const calls: Array<{ kind: string; run: () => Promise<ApiResponse> }> = [
        ...[0, 1, 2, 3].map((i) => ({
          kind: 'complete',
          run: () =>
            callApi(at(i), 'POST', `/v1/uploads/${id}/complete`, key, {}, i < 2 ? { 'idempotency-key': shared } : {}),
        })),
        ...[0, 1, 2].map((i) => ({ kind: 'abort', run: () => callApi(at(i + 1), 'DELETE', `/v1/uploads/${id}`, key) })),
        ...[0, 1, 2].map((i) => ({
          kind: 'report',
          run: () =>
            callApi(at(i), 'PATCH', `/v1/uploads/${id}/chunks/1`, key, {
              etag: '"0123456789abcdef0123456789abcdef"',
              size: chunkOf(file, up.chunkSize, 1).length,
            }),
        })),
        ...[0, 1, 2].map((i) => ({
          kind: 'presign',
          run: () =>
            callApi(at(i + 1), 'POST', `/v1/uploads/${id}/chunks/presign`, key, { chunks: [{ chunkIndex: 1 }] }),
        })),
      ].sort(() => Math.random() - 0.5);
      // Aborts are cheap and completes are not: held back a little on some rounds so both win often.
      const hold = (kind: string) => (kind === 'abort' ? (round % 3) * 15 + Math.random() * 10 : Math.random() * 10);
      const answers = await Promise.all(
        calls.map(async (c) => {
          await new Promise((r) => setTimeout(r, hold(c.kind)));
          return { kind: c.kind, res: await c.run() };
        }),
      );

      const summary = answers.map(
        (x) => `${x.kind}:${x.res.status}${x.res.body?.error ? `:${x.res.body.error.code}` : ''}`,
      );
      const ctx = `round ${round}: ${summary.join(' ')}`;
      for (const { kind, res } of answers) {
        t.true(res.status < 500, `${kind} got ${res.status} ${JSON.stringify(res.body)} (${ctx})`);
        if (res.status >= 400) {
          t.true(
            ['upload_not_in_progress', 'missing_chunks', 'idempotency_key_in_use'].includes(res.body?.error?.code),
            `${kind}: ${JSON.stringify(res.body)} (${ctx})`,
          );
        }
      }
      const [after] = (
        await tdb.pool.query<{ status: string; s3_upload_id: string | null; etag: string | null }>(
          'SELECT status, s3_upload_id, etag FROM uploads WHERE id = $1',
          [id],
        )
      ).rows;
      const status = after!.status;
      const completed = answers.filter((x) => x.kind === 'complete' && x.res.status === 200);
      const aborted = answers.filter((x) => x.kind === 'abort' && x.res.status === 204);
      const head = await check.headObject(ref.key);
      const open = await multipartOpen(ref);
      if (status === 'COMPLETED') {
        outcomes.COMPLETED++;
        t.is(aborted.length, 0, `no abort succeeded on a completed upload (${ctx})`);
        t.true(completed.length > 0, ctx);
        t.deepEqual([...new Set(completed.map((x) => x.res.body.etag))], [after!.etag], `one ETag for all (${ctx})`);
        t.is(head?.size, file.length, `the object is whole in the store (${ctx})`);
        t.false(open, `no multipart upload left open (${ctx})`);
        const chunks = (
          await tdb.pool.query<{ n: number; up: number }>(
            `SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'UPLOADED')::int AS up FROM chunks WHERE upload_id = $1`,
            [id],
          )
        ).rows[0];
        t.deepEqual(chunks, { n: 2, up: 2 }, ctx);
        if (store === 's3') t.is((await completeCalls()) - completeBefore, 1, `one CompleteMultipartUpload (${ctx})`);
        await check.deleteObject(ref.key);
      } else if (status === 'ABORTED') {
        outcomes.ABORTED++;
        t.is(completed.length, 0, `no complete succeeded on an aborted upload (${ctx})`);
        t.true(aborted.length > 0, ctx);
        t.is(head, null, `no object (${ctx})`);
        t.false(open, `the multipart upload was aborted in the store (${ctx})`);
        t.is(after!.s3_upload_id, null, `the database knows the store upload is gone (${ctx})`);
        const leased = (
          await tdb.pool.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM chunks WHERE upload_id = $1 AND status = 'PRESIGNED'`,
            [id],
          )
        ).rows[0];
        t.is(leased!.n, 0, `no chunk holds an inflight slot on an aborted upload (${ctx})`);
        if (store === 's3') t.is((await completeCalls()) - completeBefore, 0, ctx);
      } else {
        t.fail(`illegal end state ${status} (${ctx})`);
      }
    }
    t.log(`outcomes over ${ROUNDS} rounds: ${JSON.stringify(outcomes)}`);
    // Both outcomes must have been exercised, or the test proved less than it says.
    t.true(outcomes.COMPLETED > 0 && outcomes.ABORTED > 0, JSON.stringify(outcomes));
  },
);

/** CompleteMultipartUpload calls both coordinators have sent to S3 (from their histograms). */
async function completeCalls(): Promise<number> {
  if (store !== 's3') return 0;
  let n = 0;
  for (const c of [a, b]) {
    const text = await (await fetch(`${c.url}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith('object_store_request_duration_seconds_count{') && line.includes('CompleteMultipartUpload')) {
        n += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return n;
}
