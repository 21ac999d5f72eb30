import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import test from 'ava';
import { ChunkHasher } from '../../client-sdk/chunk-hasher.ts';
import { AbortError, ConveyorClient, IntegrityError, NodeHttpTransport } from '../../client-sdk/index.ts';
import { FileSource, nodeChunkHasher, nodeHashes } from '../../client-sdk/node-platform.ts';
import { BlobSource } from '../../client-sdk/sources.ts';
import type { BulkRequest, BulkTransport } from '../../client-sdk/transport.ts';
import { WorkerPool, type WorkerPort } from '../../client-sdk/worker-pool.ts';
import { s3Configured, startTestServer, type TestServer } from '../helpers/app.ts';
import { randomFile } from '../helpers/random-file.ts';

const MiB = 1024 * 1024;
const b64 = (algorithm: 'md5' | 'sha256', bytes: Uint8Array) => createHash(algorithm).update(bytes).digest('base64');

/** The chunk hasher: worker threads (fd and Blob sources) and this thread give node:crypto's digests. */
let data: Awaited<ReturnType<typeof randomFile>>;
let bytes: Buffer;
test.before(async () => {
  data = await randomFile(21 * MiB + 7, 'data.bin');
  bytes = await fs.readFile(data.file);
});
test.after.always(() => data?.cleanup());

for (const workers of [0, 1, 3]) {
  test(`${workers} threads: chunk digests, kept bytes and the whole SHA-256 match node:crypto`, async (t) => {
    const hasher = nodeChunkHasher(workers);
    t.teardown(() => hasher.close());
    t.is(hasher.workers, workers);
    const file = await FileSource.open(data.file);
    t.teardown(() => file.close());
    const blob = new BlobSource(new Blob([new Uint8Array(bytes)]), 'data.bin');
    for (const source of [file, blob]) {
      // Odd ranges, the empty one, and the same range without keeping the bytes.
      const ranges = [
        [0, 5 * MiB],
        [5 * MiB, 5 * MiB],
        [20 * MiB, MiB + 7],
        [3, 0],
        [12_345, 9 * MiB + 1],
      ] as const;
      const prepared = await Promise.all(
        ranges.flatMap(([start, length]) => [
          source.read(start, length).then(() => hasher.prepare(source, start, length, { keep: true })),
          hasher.prepare(source, start, length, { keep: false }),
        ]),
      );
      ranges.forEach(([start, length], k) => {
        const expected = bytes.subarray(start, start + length);
        for (const p of [prepared[2 * k]!, prepared[2 * k + 1]!]) {
          t.is(p.md5, b64('md5', expected), `md5 of ${start}+${length}`);
          t.is(p.sha256, b64('sha256', expected), `sha256 of ${start}+${length}`);
        }
        t.true(Buffer.from(prepared[2 * k]!.bytes!).equals(expected), `kept bytes of ${start}+${length}`);
        t.is(prepared[2 * k + 1]!.bytes, undefined);
      });
      for (const p of prepared) p.release();
      let progress = 0;
      t.is(await hasher.wholeSha256(source, { onProgress: (n) => (progress += n) }), data.sha256);
      t.is(progress, bytes.length);
    }
    t.is(hasher.budget.held, 0, 'every kept chunk was given back');
    t.is(hasher.workers, workers, 'no fallback to this thread');
    t.is(hasher.pool?.threads ?? 0, workers, 'every thread was used and is still there');
  });
}

test('kept bytes never exceed maxInflightBytes; waiting chunks start as others are released', async (t) => {
  const hasher = nodeChunkHasher(2, 10 * MiB);
  t.teardown(() => hasher.close());
  const source = await FileSource.open(data.file);
  t.teardown(() => source.close());
  let running = 0;
  let most = 0;
  await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      const p = await hasher.prepare(source, (i % 4) * 5 * MiB, 5 * MiB, { keep: true });
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 20));
      running--;
      p.release();
    }),
  );
  t.is(hasher.budget.peak, 10 * MiB);
  t.is(most, 2, 'two 5 MiB chunks at a time under a 10 MiB budget');
  t.is(hasher.budget.held, 0);
});

test('an abort ends a running job; the pool goes on with a new thread', async (t) => {
  const hasher = nodeChunkHasher(1);
  t.teardown(() => hasher.close());
  const source = await FileSource.open(data.file);
  t.teardown(() => source.close());
  const ac = new AbortController();
  const whole = hasher.wholeSha256(source, { signal: ac.signal, onProgress: () => ac.abort() });
  await t.throwsAsync(whole, { instanceOf: AbortError });
  t.is(await hasher.wholeSha256(source), data.sha256);
});

test('a read error in a thread fails the job, not the pool', async (t) => {
  const hasher = nodeChunkHasher(1);
  t.teardown(() => hasher.close());
  const source = await FileSource.open(data.file);
  t.teardown(() => source.close());
  await t.throwsAsync(hasher.prepare(source, bytes.length - 10, 20, { keep: true }), { message: /shrank/ });
  t.is(hasher.budget.held, 0);
  const p = await hasher.prepare(source, 0, 10, { keep: true });
  t.is(p.md5, b64('md5', bytes.subarray(0, 10)));
});

test('threads that cannot start (a CSP refusing blob: workers) fall back to this thread', async (t) => {
  let spawned = 0;
  const failing = (): WorkerPort => {
    spawned++;
    const listeners: Array<(e: Error) => void> = [];
    return {
      postMessage: () =>
        queueMicrotask(() => {
          for (const l of listeners) l(new Error('refused by CSP'));
        }),
      onMessage: () => {},
      onError: (l) => {
        listeners.push(l);
      },
      terminate: () => {},
    };
  };
  const hasher = new ChunkHasher({ hashes: nodeHashes, pool: new WorkerPool({ size: 2, spawn: failing }) });
  const source = new BlobSource(new Blob([new Uint8Array(bytes)]));
  const p = await hasher.prepare(source, MiB, MiB, { keep: true });
  t.is(p.md5, b64('md5', bytes.subarray(MiB, 2 * MiB)));
  t.is(hasher.workers, 0, 'the hasher gave up on threads');
  t.is(await hasher.wholeSha256(source), data.sha256);
  t.is(spawned, 1);
});

/** Whole uploads through the real coordinator and store, with and without threads. */
for (const store of s3Configured() ? (['s3'] as const) : (['disk'] as const)) {
  let srv: TestServer;
  let file: Awaited<ReturnType<typeof randomFile>>;
  test.before(async () => {
    [srv, file] = await Promise.all([startTestServer({ store }), randomFile(26 * MiB + 3, 'up.bin')]);
  });
  test.after.always(async () => {
    await srv?.close();
    await file?.cleanup();
  });
  const client = (extra: Partial<ConstructorParameters<typeof ConveyorClient>[0]> = {}) =>
    new ConveyorClient({ baseUrl: srv.url, apiKey: srv.keys.alice, resumeStore: false, ...extra });

  for (const hashWorkers of [0, 2]) {
    test.serial(`[${store}] ${hashWorkers} hashing threads: the stored object is byte-identical`, async (t) => {
      const c = client({ hashWorkers, maxInflightBytes: 64 * MiB });
      t.teardown(() => c.close());
      const up = await c.upload(file.file, { chunkSize: 5 * MiB, concurrency: { initial: 3, max: 3 } });
      t.like(up, { sha256: file.sha256, chunksSent: 6, transport: 'direct' });
      const upload = await srv.app.repos.uploads.get(up.fileId, 'alice');
      const stored = await readAll((await srv.store.getObject({ key: upload!.objectKey })).body);
      t.true(stored.equals(await fs.readFile(file.file)), 'byte-identical');
    });
  }

  test.serial(`[${store}] relay path with hashing threads: Content-MD5 from the thread`, async (t) => {
    const c = client({ hashWorkers: 2 });
    t.teardown(() => c.close());
    const up = await c.upload(file.file, { chunkSize: 5 * MiB, transport: 'relay' });
    t.like(up, { sha256: file.sha256, chunksSent: 6, transport: 'relay' });
  });

  test.serial(
    `[${store}] a chunk changed after hashing is refused by the store (BadDigest) and never reported`,
    async (t) => {
      // Our own BulkTransport interface, wrapping the real one: flips a byte of chunk 2's body after
      // the thread hashed it, so the PUT carries the original Content-MD5 with other bytes.
      const real = new NodeHttpTransport();
      const answers: number[] = [];
      const corrupting: BulkTransport = {
        async send(req: BulkRequest) {
          const res = await real.send(
            req.method === 'PUT' && req.body instanceof Uint8Array && req.headers['content-md5'] === chunk2Md5
              ? { ...req, body: flipped(req.body) }
              : req,
          );
          if (req.method === 'PUT' && req.headers['content-md5'] === chunk2Md5) answers.push(res.status);
          return res;
        },
        close: () => real.close(),
      };
      const original = await fs.readFile(file.file);
      const chunk2Md5 = b64('md5', original.subarray(10 * MiB, 15 * MiB));
      const c = client({ hashWorkers: 2, transport: corrupting });
      t.teardown(() => c.close());
      const err = await t.throwsAsync(c.upload(file.file, { chunkSize: 5 * MiB, fileName: 'corrupt.bin' }), {
        instanceOf: IntegrityError,
      });
      t.is(err?.code, 'source_changed');
      t.deepEqual(answers, [400], 'the store refused the altered chunk once, and it was not retried');
      const [summary] = (await c.list()).uploads.filter((u) => u.fileName === 'corrupt.bin');
      const status = await c.status(summary!.uploadId);
      t.true(status.missingChunks.includes(2), 'chunk 2 is not recorded as uploaded (nor in the store)');
      await c.abortUpload(summary!.uploadId);
    },
  );

  test.serial(
    `[${store}] a direct PUT of other bytes with the signed Content-MD5 gets 400 BadDigest (bad_digest from the disk store)`,
    async (t) => {
      const c = client();
      t.teardown(() => c.close());
      const original = await fs.readFile(file.file);
      const init = await c.api.initUpload(
        { fileName: 'direct.bin', fileSize: 6 * MiB, chunkSize: 5 * MiB },
        'k-direct',
      );
      t.teardown(() => c.abortUpload(init.uploadId));
      const chunk = original.subarray(0, 5 * MiB);
      const [p] = (await c.api.presign(init.uploadId, [{ chunkIndex: 0, md5: b64('md5', chunk) }])).chunks;
      const res = await fetch(p!.url, {
        method: 'PUT',
        headers: p!.headers,
        body: flipped(chunk) as Uint8Array<ArrayBuffer>,
      });
      const text = await res.text();
      t.is(res.status, 400, text);
      t.regex(text, store === 's3' ? /BadDigest/ : /"code":"bad_digest"/);
      const ok = await fetch(p!.url, { method: 'PUT', headers: p!.headers, body: new Uint8Array(chunk) });
      t.is(ok.status, 200, 'the original bytes are accepted with the same URL');
    },
  );
}

function flipped(body: Uint8Array): Uint8Array {
  const copy = new Uint8Array(body);
  const at = copy.length >> 1;
  copy[at] = copy[at]! ^ 0xff;
  return copy;
}

async function readAll(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of body) parts.push(p as Buffer);
  return Buffer.concat(parts);
}
