import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import test from 'ava';
import { s3Configured, startTestServer, type TestServer } from '../helpers/app.ts';
import { metricTotal, startFaultProxy } from '../helpers/fault-proxy.ts';
import { randomFile, sha256File } from '../helpers/random-file.ts';

const MiB = 1024 * 1024;
const BIN = path.resolve('client-sdk/bin/conveyor.mjs');
const store = s3Configured() ? 's3' : 'disk';

let srv: TestServer;
test.before(async () => {
  srv = await startTestServer({ store });
});
test.after.always(() => srv?.close());

function cli(
  args: string[],
  env: Record<string, string>,
): {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

test.serial(`[${store}] CLI: 200 MB upload and download with --json, identical SHA-256`, async (t) => {
  const f = await randomFile(200 * MiB);
  t.teardown(() => f.cleanup());
  const env = {
    CONVEYOR_URL: srv.url,
    CONVEYOR_API_KEY: srv.keys.alice,
    CONVEYOR_STATE_DIR: path.join(f.dir, 'state'),
  };
  const up = await cli(['upload', f.file, '--json'], env).done;
  t.is(up.code, 0, up.stderr);
  const u = JSON.parse(up.stdout);
  t.like(u, { size: 200 * MiB, sha256: f.sha256, chunksSent: 25, resumed: false });
  t.truthy(u.uploadId && u.fileId && u.seconds > 0);
  const out = path.join(f.dir, 'out.bin');
  const down = await cli(['download', u.fileId, out, '--json'], env).done;
  t.is(down.code, 0, down.stderr);
  t.like(JSON.parse(down.stdout), { sha256: f.sha256, verified: true });
  t.is(await sha256File(out), f.sha256);
  t.log(`CLI upload ${u.mbPerSecond} MB/s, download ${JSON.parse(down.stdout).mbPerSecond} MB/s`);

  const status = await cli(['status', u.uploadId], env).done;
  t.like(JSON.parse(status.stdout), { status: 'COMPLETED', missingChunks: [] });
  const ls = await cli(['ls', '--json'], env).done;
  t.true(JSON.parse(ls.stdout).uploads.some((x: { uploadId: string }) => x.uploadId === u.uploadId));
});

test.serial(`[${store}] CLI killed with SIGKILL halfway: the rerun sends only the missing chunks`, async (t) => {
  const f = await randomFile(60 * MiB);
  t.teardown(() => f.cleanup());
  // The CLI talks to the coordinator through a proxy that kills it at the 4th chunk report.
  const proxy = await startFaultProxy(srv.url);
  t.teardown(() => proxy.close());
  let reports = 0;
  let victim: ChildProcess | undefined;
  proxy.hook = async (req) => {
    if (req.method === 'PATCH' && ++reports === 4 && victim) {
      victim.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const env = {
    CONVEYOR_URL: proxy.url,
    CONVEYOR_API_KEY: srv.keys.alice,
    CONVEYOR_STATE_DIR: path.join(f.dir, 'state'),
  };
  const args = ['upload', f.file, '--json', '--chunk-size', '5MiB', '--concurrency', '2'];
  const first = cli(args, env);
  victim = first.child;
  const killed = await first.done;
  t.is(killed.signal, 'SIGKILL');
  victim = undefined;

  const before = await metricTotal(srv.url, 'chunks_uploaded_total');
  const rerun = await cli(args, env).done;
  t.is(rerun.code, 0, rerun.stderr);
  const r = JSON.parse(rerun.stdout);
  t.true(r.resumed);
  t.true(r.chunksSkipped >= 3, `skipped ${r.chunksSkipped}`);
  t.is(r.chunksSent + r.chunksSkipped, 12);
  t.is((await metricTotal(srv.url, 'chunks_uploaded_total')) - before, r.chunksSent, 'PUTs of the rerun');
  t.is(r.sha256, f.sha256);
});

test.serial('CLI: errors exit non-zero with the code and message on stderr', async (t) => {
  const env = { CONVEYOR_URL: srv.url, CONVEYOR_API_KEY: srv.keys.alice };
  const missing = await cli(['status', '00000000-0000-4000-8000-000000000000'], env).done;
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^conveyor: upload_not_found: /);
  const noKey = await cli(['ls'], { CONVEYOR_URL: srv.url, CONVEYOR_API_KEY: '' }).done;
  t.is(noKey.code, 2);
  t.regex(noKey.stderr, /No API key/);
  const bad = await cli(['upload', 'x', '--transport', 'carrier-pigeon'], env).done;
  t.is(bad.code, 2);
});
