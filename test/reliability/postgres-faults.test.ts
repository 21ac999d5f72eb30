import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pg from 'pg';
import { ConveyorClient } from '../../client-sdk/index.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../server/embedded.ts';
import { callApi } from '../helpers/api-client.ts';
import { s3Configured } from '../helpers/app.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { type InProcessCoordinator, startInProcessCoordinator } from '../helpers/in-process-coordinator.ts';
import { randomFile } from '../helpers/random-file.ts';
import { type S3Prefix, s3Prefix } from '../helpers/s3-prefix.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

/**
 * The coordinator against a PostgreSQL of its own (never the machine's: it is stopped and
 * started here) reached through a TCP proxy, so the test can restart the server, reset every
 * connection, or stall them. Chunks go to the real S3 gateway (Ceph RGW) when configured.
 */
const MiB = 1024 * 1024;
const store = s3Configured() ? 's3' : 'disk';

let dir: string;
let cluster: EmbeddedDatabase;
let tcp: TcpProxy;
let srv: InProcessCoordinator;
let s3: S3Prefix | undefined;
/** A pg client of the test's own, straight to the server (not through the proxy), for SQL checks. */
const sql = async <T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> => {
  const c = new pg.Client({ connectionString: cluster.url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
};

async function startCluster(): Promise<EmbeddedDatabase> {
  return startEmbeddedPostgres({ dir: path.join(dir, 'cluster'), database: 'conveyor' });
}

test.before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-pgfault-'));
  await fs.chmod(dir, 0o755); // as root the cluster runs as the `postgres` OS user
  cluster = await startCluster();
  tcp = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(cluster.url).port) });
  const viaProxy = new URL(cluster.url);
  viaProxy.port = String(tcp.port);
  s3 = store === 's3' ? s3Prefix('pgfaults') : undefined;
  srv = await startInProcessCoordinator({
    databaseUrl: viaProxy.toString(),
    store,
    ...(s3 ? { env: { S3_PREFIX: s3.prefix } } : {}),
  });
});

test.after.always(async () => {
  await srv?.close();
  await s3?.cleanup();
  await tcp?.close();
  await cluster?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

/** While the database is away: every /v1 call is a catalogued 503 with Retry-After, /readyz says so, /healthz is up. */
async function assertUnavailable(t: import('ava').ExecutionContext, what: string) {
  for (const [method, p, body] of [
    ['GET', '/v1/uploads', undefined],
    ['POST', '/v1/uploads', { fileName: 'x', fileSize: 1 }],
    ['GET', '/v1/uploads/7f1c7f1c-0000-4000-8000-000000000000', undefined],
  ] as const) {
    const res = await callApi(srv.url, method, p, srv.keys.alice, body);
    t.is(res.status, 503, `${what}: ${method} ${p} → ${res.status} ${JSON.stringify(res.body)}`);
    t.is(res.body?.error?.code, 'database_unavailable', `${what}: ${JSON.stringify(res.body)}`);
    t.regex(res.headers.get('retry-after') ?? '', /^\d+$/, `${what}: Retry-After`);
  }
  const ready = await fetch(`${srv.url}/readyz`);
  t.is(ready.status, 503, `${what}: /readyz`);
  t.not(((await ready.json()) as { checks: { database: string } }).checks.database, 'ok');
  t.is((await fetch(`${srv.url}/healthz`)).status, 200, `${what}: /healthz`);
}

test.serial(
  'PostgreSQL restarted mid-run: 503 + Retry-After while down, uploads finish, no chunk row lost',
  async (t) => {
    t.timeout(180_000);
    const files = await Promise.all([0, 1, 2].map(() => randomFile(40 * MiB + 3)));
    t.teardown(() => Promise.all(files.map((f) => f.cleanup())));
    // Chunk PUTs take a while (1.5 MiB/s each), so the outage lands in the middle of every upload.
    const s3 = await startFaultProxy(store === 's3' ? process.env.S3_ENDPOINT! : srv.url, {
      slowRate: 1,
      bytesPerSecond: 6 * MiB,
      only: (req) => req.method === 'PUT',
    });
    t.teardown(() => s3.close());
    const client = new ConveyorClient({
      baseUrl: srv.url,
      apiKey: srv.keys.alice,
      stateDir: path.join(dir, 'state'),
      urlRewrite: s3.rewrite,
      retry: { baseDelayMs: 100 },
    });
    t.teardown(() => client.close());

    let reported = 0;
    let outage: Promise<void> | undefined;
    let before: Array<{ upload_id: string; chunk_index: number; etag: string }> = [];
    const stopped = { at: 0, restartedAt: 0 };
    const uploads = files.map((f) => {
      const up = client.upload(f.file, { chunkSize: 5 * MiB, concurrency: { initial: 2, max: 2 } });
      up.on('progress', (p) => {
        reported = Math.max(reported, p.chunksDone);
        if (!outage && reported >= 2) {
          outage = (async () => {
            before = await sql(`SELECT upload_id, chunk_index, etag FROM chunks WHERE status = 'UPLOADED'`);
            // Leave the pool some idle connections (with only busy ones, the shutdown's errors reach
            // the checked-out clients, not the pool's 'error' event this test is about).
            await Promise.all(Array.from({ length: 4 }, () => srv.database.pool.query('SELECT 1')));
            stopped.at = Date.now();
            await cluster.stop(); // fast shutdown: open connections get 57P01, new ones are refused
            await assertUnavailable(t, 'database stopped');
            await new Promise((r) => setTimeout(r, 2_000));
            cluster = await startCluster(); // same data directory, a new port
            tcp.target.port = Number(new URL(cluster.url).port);
            stopped.restartedAt = Date.now();
          })();
        }
      });
      return up;
    });
    const results = await Promise.all(uploads);
    await outage;
    t.true(stopped.at > 0, 'the database was stopped during the run');
    t.log(`database down ${stopped.restartedAt - stopped.at} ms; ${before.length} chunk rows recorded before`);
    t.true(before.length >= 2);
    t.true(srv.poolErrors.length > 0, 'idle connections reported errors, and the process is still here');

    for (const [i, r] of results.entries()) {
      t.is(r.sha256, files[i]!.sha256);
      t.is(r.chunksTotal, 9);
      const rows = await sql<{ chunk_index: number; status: string }>(
        'SELECT chunk_index, status FROM chunks WHERE upload_id = $1 ORDER BY chunk_index',
        [r.uploadId],
      );
      t.deepEqual(
        rows.map((c) => c.chunk_index),
        Array.from({ length: 9 }, (_, k) => k),
        'exactly one row per chunk',
      );
      t.true(rows.every((c) => c.status === 'UPLOADED'));
      const [u] = await sql<{ status: string }>('SELECT status FROM uploads WHERE id = $1', [r.uploadId]);
      t.is(u?.status, 'COMPLETED');
      const head = await srv.store.headObject(`uploads/${r.uploadId}`);
      t.is(head?.size, 40 * MiB + 3, 'the object is in the store');
    }
    const after = new Map(
      (
        await sql<{ upload_id: string; chunk_index: number; etag: string }>(
          'SELECT upload_id, chunk_index, etag FROM chunks',
        )
      ).map((c) => [`${c.upload_id}/${c.chunk_index}`, c.etag]),
    );
    for (const c of before)
      t.is(after.get(`${c.upload_id}/${c.chunk_index}`), c.etag, 'a chunk recorded before survives');
    // Recovered: ready again, and the API answers.
    t.is((await fetch(`${srv.url}/readyz`)).status, 200);
    t.is((await callApi(srv.url, 'GET', '/v1/uploads', srv.keys.alice)).status, 200);
  },
);

test.serial('connections reset again and again: every upload still completes, nothing duplicated', async (t) => {
  t.timeout(120_000);
  const files = await Promise.all([0, 1].map(() => randomFile(30 * MiB)));
  t.teardown(() => Promise.all(files.map((f) => f.cleanup())));
  const client = new ConveyorClient({
    baseUrl: srv.url,
    apiKey: srv.keys.alice,
    resumeStore: false,
    retry: { baseDelayMs: 50 },
  });
  t.teardown(() => client.close());
  const resetsBefore = tcp.counts.reset;
  const errorsBefore = srv.poolErrors.length;
  let done = false;
  const resetter = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, 150));
      tcp.resetAll();
    }
  })();
  const results = await Promise.all(files.map((f) => client.upload(f.file, { chunkSize: 5 * MiB })));
  done = true;
  await resetter;
  t.log(`${tcp.counts.reset - resetsBefore} connections reset; ${srv.poolErrors.length - errorsBefore} pool errors`);
  t.true(tcp.counts.reset - resetsBefore > 5, 'connections were cut during the run');
  for (const [i, r] of results.entries()) {
    t.is(r.sha256, files[i]!.sha256);
    const [row] = await sql<{ n: number; d: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT chunk_index)::int AS d FROM chunks WHERE upload_id = $1 AND status = 'UPLOADED'`,
      [r.uploadId],
    );
    t.deepEqual(row, { n: 6, d: 6 });
  }
});

test.serial(
  'a stalled database (connections accepted, nothing answered): 503 after the pool timeout, then recovery',
  async (t) => {
    t.timeout(60_000);
    tcp.mode = 'stall';
    tcp.resetAll();
    t.teardown(() => {
      tcp.mode = 'forward';
    });
    const t0 = Date.now();
    const res = await callApi(srv.url, 'GET', '/v1/uploads', srv.keys.alice);
    t.is(res.status, 503, JSON.stringify(res.body));
    t.is(res.body.error.code, 'database_unavailable');
    t.truthy(res.headers.get('retry-after'));
    t.true(Date.now() - t0 < 15_000, 'bounded by the pool timeout, not hanging');
    const ready = await fetch(`${srv.url}/readyz`);
    t.is(ready.status, 503);
    t.is((await fetch(`${srv.url}/healthz`)).status, 200);
    tcp.mode = 'forward';
    tcp.resetAll();
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await callApi(srv.url, 'GET', '/v1/uploads', srv.keys.alice)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    t.is(status, 200, 'answers again once the database does');
    t.is((await fetch(`${srv.url}/readyz`)).status, 200);
  },
);
