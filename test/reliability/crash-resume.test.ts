import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ConveyorClient, type UploadResult } from '../../client-sdk/index.ts';
import { freePort } from '../../server/embedded.ts';
import { s3Configured } from '../helpers/app.ts';
import { type CoordinatorProcess, startCoordinatorProcess } from '../helpers/coordinator-process.ts';
import { createTestDatabase } from '../helpers/db.ts';
import { s3Prefix } from '../helpers/s3-prefix.ts';

/**
 * The coordinator killed with SIGKILL (no drain, no cleanup) in the middle of 50 concurrent SDK
 * uploads, and started again on the same port and database. The SDK retries through the gap,
 * and what still fails is run again from the resume store; all 50 files must then be complete and
 * byte-identical, with exactly one chunk row per chunk and no multipart upload left in S3.
 */
const MiB = 1024 * 1024;
const FILES = 50;
const DOWN_MS = 4000;
const store = s3Configured() ? 's3' : 'disk';

test('SIGKILL during 50 concurrent uploads: restart, resume, all complete byte-identical, no lost or duplicate chunk', async (t) => {
  t.timeout(300_000);
  const tdb = await createTestDatabase();
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-crash-'));
  const dataDir = path.join(work, 'data');
  const key = `crash-${randomBytes(12).toString('hex')}`;
  const port = await freePort();
  // A prefix of this run's own, so every multipart upload and object under it is one of ours.
  const s3 = store === 's3' ? s3Prefix('crash') : undefined;
  const start = () =>
    startCoordinatorProcess({
      port,
      databaseUrl: tdb.url,
      apiKeys: `alice:${key}`,
      store,
      dataDir,
      env: {
        RATE_LIMIT_PER_SECOND: '10000',
        RATE_LIMIT_BURST: '10000',
        ...(s3 ? { S3_PREFIX: s3.prefix } : {}),
      },
    });
  let coordinator: CoordinatorProcess = await start();
  t.teardown(async () => {
    await coordinator.kill();
    await s3?.cleanup();
    await tdb.drop();
    await fs.rm(work, { recursive: true, force: true });
  });

  // 50 files of 11–16 MiB (3–4 chunks of 5 MiB), each different: slices of one random pool.
  const pool = randomBytes(24 * MiB);
  const files = await Promise.all(
    Array.from({ length: FILES }, async (_, i) => {
      const size = 11 * MiB + Math.floor(((i * 7919) % 97) * 53_000);
      const bytes = Buffer.concat([Buffer.from(`file ${i} ${randomBytes(8).toString('hex')}\n`), pool]).subarray(
        0,
        size,
      );
      const file = path.join(work, `f${i}.bin`);
      await fs.writeFile(file, bytes);
      return { file, size, sha256: createHash('sha256').update(bytes).digest('base64') };
    }),
  );
  const totalChunks = files.reduce((n, f) => n + Math.ceil(f.size / (5 * MiB)), 0);

  const client = (retry: { limit?: number; baseDelayMs: number }) =>
    new ConveyorClient({ baseUrl: coordinator.url, apiKey: key, stateDir: path.join(work, 'state'), retry });
  // The first run gives up quickly (one retry), so the crash leaves uploads only a resume can finish.
  const first = client({ limit: 1, baseDelayMs: 100 });
  t.teardown(() => first.close());
  // The kill is triggered by what the database has recorded, whatever the SDK reports.
  const killedAt = { chunks: 0, ms: 0 };
  const t0 = Date.now();
  let finished = false;
  const killer = (async () => {
    while (!finished) {
      const { rows } = await tdb.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM chunks WHERE status = 'UPLOADED'`,
      );
      if (rows[0]!.n >= totalChunks * 0.4) {
        killedAt.chunks = rows[0]!.n;
        await coordinator.kill();
        killedAt.ms = Date.now() - t0;
        // Down long enough that the first run's single quick retry cannot bridge the gap (a restart
        // alone can take under a second, and then every upload rides through).
        await new Promise((r) => setTimeout(r, DOWN_MS));
        coordinator = await start();
        return true;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  })();
  const runs = files.map((f) =>
    Promise.resolve(first.upload(f.file, { chunkSize: 5 * MiB, concurrency: { initial: 1, max: 2 } })).then(
      (r) => ({ ok: true as const, r }),
      (err: Error) => ({ ok: false as const, err }),
    ),
  );
  const firstRound = await Promise.all(runs);
  finished = true;
  const wasKilled = await killer;
  const early = firstRound.find((o) => !o.ok);
  t.true(wasKilled, `the coordinator was killed mid-run; ${early && !early.ok ? early.err.stack : ''}`);
  const failed = firstRound.flatMap((o, i) => (o.ok ? [] : [i]));
  t.log(
    `killed after ${killedAt.chunks}/${totalChunks} chunks (${killedAt.ms} ms); ` +
      `${FILES - failed.length} uploads rode through on retries, ${failed.length} failed and are resumed`,
  );
  for (const i of failed.slice(0, 5)) {
    const o = firstRound[i]!;
    if (!o.ok) t.log(`  #${i}: ${o.err.name} ${(o.err as { code?: string }).code}: ${o.err.message.slice(0, 160)}`);
  }

  // What failed is run again, as a user re-running the command: the resume store picks it up.
  const second = client({ baseDelayMs: 200 });
  t.teardown(() => second.close());
  const results: UploadResult[] = await Promise.all(
    firstRound.map((o, i) => (o.ok ? o.r : second.upload(files[i]!.file, { chunkSize: 5 * MiB }))),
  );
  t.true(failed.length > 0, 'the crash interrupted some uploads for good');
  // An upload whose init answer was lost in the crash has no resume state: it starts afresh.
  const resumed = failed.filter((i) => results[i]!.resumed);
  t.true(resumed.length > 0, 'interrupted uploads were resumed');
  t.true(
    resumed.some((i) => results[i]!.chunksSkipped > 0),
    'a resumed upload skipped the chunks it had already sent',
  );
  t.log(`${resumed.length} resumed, skipping ${resumed.reduce((n, i) => n + results[i]!.chunksSkipped, 0)} chunks`);

  const uploadIds = results.map((r) => r.uploadId);
  t.is(new Set(uploadIds).size, FILES, 'one upload per file');
  for (const [i, r] of results.entries()) {
    t.is(r.sha256, files[i]!.sha256, `file ${i}`);
    t.is(r.size, files[i]!.size);
  }
  // The database: every upload COMPLETED with exactly one UPLOADED row per chunk.
  const rows = (
    await tdb.pool.query<{ id: string; status: string; total_chunks: number; n: number; d: number; up: number }>(
      `SELECT u.id, u.status, u.total_chunks, count(c.id)::int AS n, count(DISTINCT c.chunk_index)::int AS d,
              count(c.id) FILTER (WHERE c.status = 'UPLOADED')::int AS up
         FROM uploads u LEFT JOIN chunks c ON c.upload_id = u.id GROUP BY u.id`,
    )
  ).rows;
  const ours = new Set(uploadIds);
  for (const row of rows.filter((r) => ours.has(r.id))) {
    t.like(row, { status: 'COMPLETED', n: row.total_chunks, d: row.total_chunks, up: row.total_chunks }, row.id);
  }
  t.is(rows.filter((r) => ours.has(r.id)).length, FILES);
  // Others: inits whose answer the crash swallowed. They hold nothing: no chunk, still INITIATED;
  // aborting them (what the expiry sweeper does after UPLOAD_TTL_HOURS) leaves nothing in S3.
  const orphans = rows.filter((r) => !ours.has(r.id));
  for (const row of orphans) t.like(row, { status: 'INITIATED', n: 0 }, row.id);
  for (const row of orphans) {
    const res = await fetch(`${coordinator.url}/v1/uploads/${row.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${key}` },
    });
    t.is(res.status, 204);
  }
  t.log(`${orphans.length} inits lost in the crash (aborted)`);
  // The bytes, read back through the restarted coordinator.
  for (const [i, r] of results.entries()) {
    const res = await fetch(`${coordinator.url}/v1/files/${r.fileId}/content`, {
      headers: { authorization: `Bearer ${key}` },
    });
    t.is(res.status, 200);
    const hash = createHash('sha256').update(Buffer.from(await res.arrayBuffer()));
    t.is(hash.digest('base64'), files[i]!.sha256, `download ${i}`);
  }
  if (s3) {
    // S3 agrees: every file is an object, and no multipart upload is left open under this run's
    // prefix (one killed between CreateMultipartUpload and its INSERT would be an orphan no row knows).
    const objects = new Set(await s3.objectKeys());
    t.deepEqual(
      uploadIds.filter((id) => !objects.has(`${s3.prefix}uploads/${id}`)),
      [],
      'every file is in S3',
    );
    const open = await s3.openMultipartKeys();
    t.deepEqual(
      open.filter((k) => uploadIds.some((id) => k.endsWith(id))),
      [],
      'no multipart upload of a completed file left open',
    );
    t.log(`multipart uploads left under the prefix by killed inits: ${open.length}`);
  }
  t.log(`whole run ${Date.now() - t0} ms`);
});
