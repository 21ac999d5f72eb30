import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { RelayHashPool } from '../../server/relay/hash-pool.ts';
import { callApi, chunkOf, initUpload } from '../helpers/api-client.ts';
import { s3Configured, startTestServer } from '../helpers/app.ts';

const MiB = 1024 * 1024;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('base64');

for (const threads of [0, 2]) {
  test(`${threads} threads: MD5 of a held buffer and of a spool file`, async (t) => {
    const pool = new RelayHashPool(threads);
    t.teardown(() => pool.close());
    const data = randomBytes(3 * MiB + 5);
    const held = pool.alloc(data.length);
    data.copy(held);
    const out = await pool.md5Held(held);
    t.is(out.md5, md5(data));
    t.true(out.bytes.equals(data), 'the bytes come back whole');
    t.false(out.bytes.buffer instanceof SharedArrayBuffer, 'never shared memory (it was never freed)');
    if (threads > 0) t.is(held.byteLength, 0, 'moved to the thread and back, not copied: the original is detached');
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-hash-'));
    t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(dir, 'c.part'), data);
    t.is(await pool.md5File(path.join(dir, 'c.part')), md5(data));
  });

  test(`${threads} threads: 512 MiB of chunks hashed one after another leave memory flat`, async (t) => {
    // The bug this guards: chunks shared with the threads (SharedArrayBuffer) were never freed, and
    // a coordinator's RSS grew by every byte it relayed.
    const pool = new RelayHashPool(threads);
    t.teardown(() => pool.close());
    await pool.md5Held(pool.alloc(MiB)); // threads started before the baseline
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 64; i++) {
      const held = pool.alloc(8 * MiB);
      held.fill(i + 1); // written, so resident (untouched pages would not show)
      await pool.md5Held(held);
    }
    const grown = (process.memoryUsage().rss - before) / MiB;
    t.log(`RSS grew ${grown.toFixed(0)} MiB over 64 × 8 MiB`);
    t.true(grown < 200, `RSS grew ${grown.toFixed(0)} MiB`);
  });
}

test('queue depth and busy threads count the jobs waiting and running', async (t) => {
  const pool = new RelayHashPool(1);
  t.teardown(() => pool.close());
  const bufs = Array.from({ length: 4 }, () => {
    const b = pool.alloc(32 * MiB);
    randomBytes(1024).copy(b);
    return b;
  });
  t.deepEqual([pool.queued, pool.busy], [0, 0]);
  const expected = bufs.map(md5); // before the buffers move to the thread
  const all = Promise.all(bufs.map(async (bytes) => (await pool.md5Held(bytes)).md5));
  // Piscina hands one job to its one thread and queues the others.
  await new Promise((r) => setImmediate(r));
  t.is(pool.busy, 1);
  t.true(pool.queued >= 1, `queued: ${pool.queued}`);
  const digests = await all;
  t.deepEqual(digests, expected);
  t.deepEqual([pool.queued, pool.busy], [0, 0]);
});

const store = s3Configured() ? 's3' : 'disk';
for (const threads of ['0', '2']) {
  test(`[${store}] RELAY_HASH_THREADS=${threads}: Content-MD5 checked in memory and spooled, pool in /metrics`, async (t) => {
    // A 6 MiB budget: of two 5 MiB chunks at once, one is held in memory and one spooled.
    const srv = await startTestServer({
      store,
      env: { RELAY_MEMORY_BUDGET: String(6 * MiB), RELAY_HASH_THREADS: threads },
    });
    t.teardown(() => srv.close());
    const file = randomBytes(10 * MiB + 7);
    const u = await initUpload(srv.url, srv.keys.alice, file, { chunkSize: 5 * MiB });
    const put = (i: number, body: Buffer, digest: string) =>
      fetch(`${srv.url}/v1/uploads/${u.uploadId}/chunks/${i}`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${srv.keys.alice}`,
          'content-type': 'application/octet-stream',
          'content-md5': digest,
        },
        body: Uint8Array.from(body),
      });
    const wrong = md5(Buffer.from('something else'));
    const bad = await Promise.all([0, 1].map((i) => put(i, chunkOf(file, u.chunkSize, i), wrong)));
    for (const res of bad) {
      t.is(res.status, 400);
      t.like(await res.json(), { error: { code: 'bad_digest' } });
    }
    const good = await Promise.all(
      [0, 1, 2].map((i) => put(i, chunkOf(file, u.chunkSize, i), md5(chunkOf(file, u.chunkSize, i)))),
    );
    t.deepEqual(
      good.map((r) => r.status),
      [200, 200, 200],
    );
    t.is((await callApi(srv.url, 'POST', `/v1/uploads/${u.uploadId}/complete`, srv.keys.alice)).status, 200);
    const metrics = await (await fetch(`${srv.url}/metrics`)).text();
    t.regex(metrics, new RegExp(`^relay_hash_threads ${threads}$`, 'm'));
    t.regex(metrics, /^relay_hash_queue_depth 0$/m);
    t.regex(metrics, /^relay_hash_busy_count 0$/m);
  });
}
