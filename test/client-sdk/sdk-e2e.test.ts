import { createHash } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import test from 'ava';
import { ConveyorClient, type UploadResult } from '../../client-sdk/index.ts';
import { NodeHttpTransport } from '../../client-sdk/node-transport.ts';
import type { BulkTransport } from '../../client-sdk/transport.ts';
import { s3Configured, startTestServer, type TestServer } from '../helpers/app.ts';
import { metricTotal, startFaultProxy } from '../helpers/fault-proxy.ts';
import { randomFile, sha256File } from '../helpers/random-file.ts';

const MiB = 1024 * 1024;

/** The SDK against the real coordinator and each object store: no mocks of either. */
for (const store of s3Configured() ? (['disk', 's3'] as const) : (['disk'] as const)) {
  const title = (s: string) => `[${store}] ${s}`;
  let srv: TestServer;
  let big: Awaited<ReturnType<typeof randomFile>>;
  let uploaded: UploadResult;
  const client = (extra: Partial<ConstructorParameters<typeof ConveyorClient>[0]> = {}) =>
    new ConveyorClient({ baseUrl: srv.url, apiKey: srv.keys.alice, stateDir: path.join(big.dir, 'state'), ...extra });

  test.before(async () => {
    [srv, big] = await Promise.all([startTestServer({ store }), randomFile(200 * 1024 * 1024, 'big.bin')]);
  });
  test.after.always(async () => {
    await srv?.close();
    await big?.cleanup();
  });

  test.serial(title('200 MB: upload, then parallel ranged download, identical SHA-256'), async (t) => {
    const c = client();
    t.teardown(() => c.close());
    const progress: number[] = [];
    const up = c.upload(big.file);
    up.on('progress', (p) => progress.push(p.bytesDone));
    uploaded = await up;
    t.is(uploaded.sha256, big.sha256);
    t.like(uploaded, {
      size: 200 * MiB,
      chunksTotal: 25,
      chunksSent: 25,
      chunksSkipped: 0,
      resumed: false,
      transport: 'direct',
    });
    t.true(progress.length > 3 && progress.at(-1) === 200 * MiB);
    const out = path.join(big.dir, 'out.bin');
    const down = await c.download(uploaded.fileId, out);
    t.like(down, { size: 200 * MiB, sha256: big.sha256, verified: true, chunksFetched: 25 });
    t.is(await sha256File(out), big.sha256);
    t.log(
      `upload ${(200 / uploaded.seconds).toFixed(0)} MiB/s (x${uploaded.concurrency.current}), ` +
        `download ${(200 / down.seconds).toFixed(0)} MiB/s (x${down.concurrency.current})`,
    );
  });

  test.serial(title('download into a Node stream through the reorder window'), async (t) => {
    const c = client();
    t.teardown(() => c.close());
    const hash = createHash('sha256');
    let n = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        n += chunk.length;
        cb();
      },
    });
    const down = await c.download(uploaded.fileId, sink, { reorderWindow: 4 });
    t.is(n, 200 * MiB);
    t.is(hash.digest('base64'), big.sha256);
    t.true(down.verified);
  });

  test.serial(title('aborted halfway, a new client resumes and sends only the missing chunks'), async (t) => {
    const f = await randomFile(40 * MiB + 17);
    t.teardown(() => f.cleanup());
    const stateDir = path.join(f.dir, 'state');
    const first = new ConveyorClient({ baseUrl: srv.url, apiKey: srv.keys.alice, stateDir });
    const up = first.upload(f.file, { chunkSize: 5 * MiB, concurrency: { initial: 2, max: 2 } });
    t.like(up.progress, { phase: 'preparing', bytesDone: 0, chunksDone: 0 }, 'progress is readable before start');
    t.is(up.uploadId, undefined);
    const started: Array<{ uploadId: string; resumed: boolean }> = [];
    up.on('started', (e) => started.push(e));
    up.on('progress', (p) => {
      if (p.chunksDone >= 3) up.abort(new Error('stop'));
    });
    await t.throwsAsync(up, { name: 'AbortError' });
    first.close();
    // The id was known before the upload finished (it never did), and the server knows it.
    t.is(started.length, 1);
    t.like(started[0], { resumed: false });
    t.is(up.uploadId, started[0]!.uploadId);
    t.is((await first.status(up.uploadId!)).status, 'IN_PROGRESS');
    // A report the aborted run had already sent may still be landing on the server.
    await new Promise((r) => setTimeout(r, 500));
    const before = await metricTotal(srv.url, 'chunks_uploaded_total');
    const second = new ConveyorClient({ baseUrl: srv.url, apiKey: srv.keys.alice, stateDir });
    t.teardown(() => second.close());
    const resumedUp = second.upload(f.file, { chunkSize: 5 * MiB });
    const resumedStart = new Promise((r) => resumedUp.on('started', r));
    const done = await resumedUp;
    t.deepEqual(await resumedStart, { uploadId: up.uploadId, resumed: true });
    t.is(done.uploadId, up.uploadId as string);
    t.true(done.resumed);
    t.true(done.chunksSkipped >= 3, `skipped ${done.chunksSkipped}`);
    t.is(done.chunksSent + done.chunksSkipped, 9);
    t.is(
      (await metricTotal(srv.url, 'chunks_uploaded_total')) - before,
      done.chunksSent,
      'the server saw only those PUTs',
    );
    t.is(done.sha256, f.sha256);
    const again = await second.upload(f.file, { chunkSize: 5 * MiB });
    t.like(again, { chunksSent: 9, resumed: false }, 'a completed upload leaves no state behind: a new upload');
  });

  test.serial(title('pause stops the transfer, resume finishes it'), async (t) => {
    const f = await randomFile(60 * MiB);
    t.teardown(() => f.cleanup());
    const c = new ConveyorClient({ baseUrl: srv.url, apiKey: srv.keys.alice, resumeStore: false });
    t.teardown(() => c.close());
    // One chunk at a time, and the pool may not grow: a fast store must not finish before the pause lands.
    const up = c.upload(f.file, { chunkSize: 5 * MiB, concurrency: { initial: 1, min: 1, max: 1 } });
    await new Promise<void>((resolve) => {
      const off = up.on('progress', (p) => {
        if (p.chunksDone >= 1) {
          up.pause();
          off();
          resolve();
        }
      });
    });
    await new Promise((r) => setTimeout(r, 300));
    const paused = up.progress;
    await new Promise((r) => setTimeout(r, 500));
    t.true(up.paused);
    t.is(up.progress.chunksDone, paused.chunksDone, 'nothing completes while paused');
    t.true(paused.chunksDone < 12);
    up.resume();
    const r = await up;
    t.is(r.sha256, f.sha256);
    t.is(r.chunksSent, 12);
  });

  test.serial(title('relay transport: chunks go through the coordinator'), async (t) => {
    const f = await randomFile(12 * MiB);
    t.teardown(() => f.cleanup());
    const c = new ConveyorClient({ baseUrl: srv.url, apiKey: srv.keys.alice, resumeStore: false });
    t.teardown(() => c.close());
    const r = await c.upload(f.file, { chunkSize: 5 * MiB, transport: 'relay' });
    t.like(r, { transport: 'relay', chunksSent: 3, sha256: f.sha256 });
  });

  test.serial(title('auto transport: when the store cannot be reached it falls back to the relay'), async (t) => {
    const f = await randomFile(12 * MiB);
    t.teardown(() => f.cleanup());
    const c = new ConveyorClient({
      baseUrl: srv.url,
      apiKey: srv.keys.alice,
      resumeStore: false,
      // Every presigned URL now points at a closed port: what a client behind a firewall sees.
      urlRewrite: (u) => {
        const x = new URL(u);
        x.port = '1';
        return x.toString();
      },
    });
    t.teardown(() => c.close());
    const switched: unknown[] = [];
    const transfer = c.upload(f.file, { chunkSize: 5 * MiB, transport: 'auto' });
    transfer.on('transport', (e) => switched.push(e));
    const r = await transfer;
    t.like(r, { transport: 'relay', sha256: f.sha256 });
    t.like(switched[0], { from: 'direct', to: 'relay' });
  });

  test.serial(
    title('through a fault-injecting proxy (503s, resets, 1 s stalls) both ways stay byte-identical'),
    async (t) => {
      const f = await randomFile(60 * MiB + 5);
      t.teardown(() => f.cleanup());
      const origin = store === 's3' ? process.env.S3_ENDPOINT! : srv.url;
      const proxy = await startFaultProxy(origin, {
        errorRate: 0.1,
        resetRate: 0.1,
        stallRate: 0.1,
        stallMs: 1000,
        seed: 7,
      });
      t.teardown(() => proxy.close());
      const retriesBefore = await metricTotal(srv.url, 'retries_total');
      const c = new ConveyorClient({
        baseUrl: srv.url,
        apiKey: srv.keys.alice,
        resumeStore: false,
        urlRewrite: proxy.rewrite,
        requestTimeoutMs: 5000,
        retry: { baseDelayMs: 50, limit: 8 },
      });
      t.teardown(() => c.close());
      const retries: string[] = [];
      const up = c.upload(f.file, { chunkSize: 5 * MiB });
      up.on('retry', (r) => retries.push(r.reason));
      const r = await up;
      t.is(r.sha256, f.sha256);
      const uploadFaults = { ...proxy.counts.faults };
      t.true(uploadFaults.error + uploadFaults.reset > 0, JSON.stringify(uploadFaults));
      t.true(r.retries > 0, `retries ${r.retries}: ${retries.join(', ')}`);
      t.true((await metricTotal(srv.url, 'retries_total')) - retriesBefore > 0, 'PATCH attempts reached retries_total');

      const out = path.join(f.dir, 'out.bin');
      const d = await c.download(r.fileId, out);
      t.is(d.sha256, f.sha256);
      t.is(await sha256File(out), f.sha256);
      t.true(d.retries > 0, `download retries ${d.retries}; faults ${JSON.stringify(proxy.counts.faults)}`);
      t.log(
        `faults ${JSON.stringify(proxy.counts.faults)}, upload retries ${r.retries}, download retries ${d.retries}`,
      );
    },
  );
}

test('a 429 from the coordinator slows the pool, and the upload still completes', async (t) => {
  const srv = await startTestServer({ store: 'disk', env: { MAX_INFLIGHT_PER_UPLOAD: '2' } });
  const f = await randomFile(40 * MiB);
  t.teardown(async () => {
    await srv.close();
    await f.cleanup();
  });
  // Each chunk PUT takes ≥ 300 ms, so chunks stay presigned-but-unreported long enough for the
  // pool's other workers to ask for more than the server's 2 slots (hashing alone cannot pace them).
  const bulk = new NodeHttpTransport();
  const slow: BulkTransport = {
    send: async (req) => {
      if (req.method === 'PUT') await new Promise((r) => setTimeout(r, 300));
      return bulk.send(req);
    },
    close: () => bulk.close(),
  };
  const c = new ConveyorClient({ baseUrl: srv.url, apiKey: srv.keys.alice, resumeStore: false, transport: slow });
  t.teardown(() => c.close());
  const up = c.upload(f.file, { chunkSize: 5 * MiB, concurrency: { initial: 6, max: 8 } });
  const r = await up;
  t.is(r.sha256, f.sha256);
  const throttles = r.concurrency.changes.filter((ch) => ch.reason === 'throttle');
  t.true(throttles.length > 0, JSON.stringify(r.concurrency.changes));
  t.true(throttles[0]!.to < 6, 'the level was cut');
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  t.regex(metrics, /throttled_requests_total\{limit="upload_inflight"\} [1-9]/);
});
