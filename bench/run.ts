/**
 * `npm run bench [-- --quick]` (issue 6): Conveyor next to its baselines, every figure measured in
 * this one run on this machine and this S3, plus the coordinator's capacity. Scenarios (each in
 * bench/scenarios/):
 *
 *   throughput          one large file up and down: SDK direct / relay, lib-storage `Upload`, one
 *                       `GetObject`, the streaming endpoint, and the ceilings; then a sweep of
 *                       throughput against concurrency (the chart)
 *   many-files          many small files, the same contenders
 *   chunk-latency       presign / PUT / report latency; retry rate with and without injected faults
 *   concurrent-uploads  100 real uploads at once against a coordinator with its default limits
 *   saturation          concurrent uploads ramped 10 → 1,000 until 429s > 1% or p99 presign > 50 ms
 *   control-plane       autocannon: presign and report calls per second, p50/p95/p99, at 100 and 1,000
 *   workers             the worker pool over time while relay load rises and falls
 *   sdk-workers         bench/sdk-workers.ts (issue 8): hashing in 0 vs N threads
 *   big-file            (full mode) a 5 GiB file up and down, checksums verified, peak RSS
 *
 * Stack: the S3_* environment when set (else `bash infra/ceph-rgw.sh start`), DATABASE_URL or the
 * machine's PostgreSQL (else an embedded one), and coordinator processes started here with fresh
 * databases. Every object a run creates is deleted. Writes bench/results/<date>.json (+ .md),
 * latest.json, latest.md, latest.svg (throughput against concurrency), latest-workers.svg.
 *
 *   npm run bench -- --quick     ~6–8 min: 512 MiB file, sweep on 256 MiB, short ramp and load runs
 *   npm run bench                ~25 min: 2 GiB, 3 runs per figure (median), longer runs, 5 GiB file
 *   options: --size-mib N --concurrency C --part-mib S --runs R --sweep 1,2,4,8,16 --sweep-size-mib N
 *            --only a,b (scenario names above; then README.md is left alone) --out DIR --no-readme
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Coordinator, MiB, machine, startCoordinator, storeDescription } from './lib/coordinator.ts';
import { log, round } from './lib/measure.ts';
import {
  BENCH_COORDINATOR_ENV,
  type Bench,
  ensureDatabase,
  ensureS3,
  objectTracker,
  reclaimDeleted,
  s3Client,
} from './lib/stack.ts';
import { markdown, readmeSection, replaceReadmeSection } from './report/markdown.ts';
import { throughputChart, workersChart } from './report/svg.ts';
import type { Results } from './report/types.ts';
import { bigFile } from './scenarios/big-file.ts';
import { chunkLatency } from './scenarios/chunk-latency.ts';
import { concurrentUploads } from './scenarios/concurrent-uploads.ts';
import { abortUploads, controlPlane, createUploads, saturationRamp } from './scenarios/control-plane.ts';
import { manyFiles } from './scenarios/many-files.ts';
import { throughput } from './scenarios/throughput.ts';
import { workerScaling } from './scenarios/workers.ts';
import { targets } from './targets.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'size-mib': { type: 'string' },
    concurrency: { type: 'string' },
    'part-mib': { type: 'string' },
    runs: { type: 'string' },
    sweep: { type: 'string' },
    'sweep-size-mib': { type: 'string' },
    only: { type: 'string' },
    out: { type: 'string', default: 'bench/results' },
    'no-readme': { type: 'boolean', default: false },
  },
});
const QUICK = values.quick;
const C = Number(values.concurrency ?? 8);
const PART = Number(values['part-mib'] ?? 8) * MiB;
const ONLY = values.only?.split(',');
const enabled = (name: string) => !ONLY || ONLY.includes(name);

/** The sdk-workers scenario (issue 8): bench/sdk-workers.ts's `benchSdkWorkers`, when that file exists. */
async function sdkWorkersHook(co: Coordinator): Promise<unknown> {
  const file = './sdk-workers.ts';
  const mod = (await import(file).catch(() => undefined)) as
    | { benchSdkWorkers?: (o: Record<string, unknown>) => Promise<unknown> }
    | undefined;
  if (!mod?.benchSdkWorkers) return { skipped: 'bench/sdk-workers.ts (benchSdkWorkers) is not there' };
  return mod.benchSdkWorkers({
    sizeMiB: 1024, // issue 8's figure is for a 1 GiB upload, in quick mode too
    concurrency: C,
    chunkMiB: PART / MiB,
    coordinator: { base: co.base, apiKey: co.apiKey },
    log: (l: string) => log(`sdk-workers: ${l}`),
  });
}

async function main(): Promise<number> {
  const started = new Date();
  const t0 = performance.now();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-bench-'));
  const s3State = await ensureS3();
  const db = await ensureDatabase(dir);
  const bucket = process.env.S3_BUCKET!;
  const s3 = s3Client();
  const tracker = objectTracker(started);
  let coordinator: Coordinator | undefined;
  const argv = process.argv.slice(2).join(' ');
  const results: Results = {
    benchmark: 'conveyor',
    mode: QUICK ? 'quick' : 'full',
    command: `npm run bench${argv ? ` -- ${argv}` : ''}`,
    startedAt: started.toISOString(),
    seconds: 0,
    machine: machine(),
    store: storeDescription(),
    stack: { s3: s3State, coordinator: 'started here, fresh database', database: db.description },
    coordinatorSettings: BENCH_COORDINATOR_ENV,
    partSizeMiB: PART / MiB,
    scenarioSeconds: {},
    errors: {},
    targets: {},
  };
  try {
    coordinator = await startCoordinator({ env: BENCH_COORDINATOR_ENV });
    const b: Bench = {
      quick: QUICK,
      s3,
      bucket,
      coordinator,
      dir,
      part: PART,
      key: tracker.key,
      uploaded: tracker.uploaded,
      flush: async (keep) => {
        await tracker.cleanup(s3, bucket, keep);
        reclaimDeleted();
      },
    };
    const step = async <K extends keyof Results>(name: string, field: K, fn: () => Promise<Results[K]>) => {
      if (!enabled(name)) return;
      const s0 = performance.now();
      try {
        results[field] = await fn();
      } catch (err) {
        log(`${name} FAILED: ${(err as Error).stack ?? err}`);
        results.errors[name] = String((err as Error).message ?? err).slice(0, 500);
      } finally {
        await b.flush();
        results.scenarioSeconds[name] = round((performance.now() - s0) / 1000, 0);
      }
    };
    const co = coordinator;

    await step('throughput', 'throughput', () =>
      throughput(b, {
        size: Number(values['size-mib'] ?? (QUICK ? 512 : 2048)) * MiB,
        concurrency: C,
        runs: Number(values.runs ?? (QUICK ? 1 : 3)),
        sweep: (values.sweep ?? '1,2,4,8,16').split(',').map(Number),
        sweepSize: Number(values['sweep-size-mib'] ?? (QUICK ? 256 : 1024)) * MiB,
        profileOnMiss: true,
      }),
    );
    await step('many-files', 'manyFiles', () =>
      manyFiles(b, { count: QUICK ? 32 : 128, fileSize: 16 * MiB, filesAtOnce: 4, perFile: 2 }),
    );
    await step('chunk-latency', 'chunkLatency', () =>
      chunkLatency(b, { size: (QUICK ? 256 : 1024) * MiB, concurrency: C }),
    );
    await step('concurrent-uploads', 'concurrentUploads', () =>
      concurrentUploads(b, { uploads: 100, fileSize: 16 * MiB, perUpload: 2 }),
    );
    if (enabled('saturation') || enabled('control-plane')) {
      log('creating 1,000 uploads for the control-plane scenarios');
      const ups = await createUploads(co, 1000);
      try {
        await step('saturation', 'saturation', () =>
          saturationRamp(co, ups, { levels: [10, 25, 50, 100, 250, 500, 1000], seconds: QUICK ? 4 : 10, putMs: 1000 }),
        );
        await step('control-plane', 'controlPlane', () =>
          controlPlane(co, ups, { connections: [100, 1000], seconds: QUICK ? 5 : 15 }),
        );
      } finally {
        await abortUploads(co, ups);
      }
    }
    await step('workers', 'workerScaling', () =>
      workerScaling(co, {
        profile: QUICK
          ? [
              [4, 1],
              [10, 8],
              [12, 24],
              [8, 4],
              [12, 0],
            ]
          : [
              [10, 1],
              [20, 8],
              [30, 24],
              [20, 4],
              [40, 0],
            ],
        chunks: 4,
        everyMs: 500,
      }),
    );
    await step('sdk-workers', 'sdkWorkers', () => sdkWorkersHook(co));
    if (!QUICK) await step('big-file', 'bigFile', () => bigFile(b, { size: 5 * 1024 * MiB, concurrency: C }));

    results.targets = targets(results);
    results.seconds = round((performance.now() - t0) / 1000, 0);
    await write(results, started);
    return Object.keys(results.errors).length ? 1 : 0;
  } finally {
    await tracker.cleanup(s3, bucket);
    reclaimDeleted();
    await coordinator?.stop();
    await db.stop();
    await fs.rm(dir, { recursive: true, force: true });
    s3.destroy();
  }
}

async function write(results: Results, started: Date) {
  const out = values.out;
  await fs.mkdir(out, { recursive: true });
  const stamp = started
    .toISOString()
    .replace(/[:]/g, '-')
    .replace(/\.\d+Z$/, 'Z');
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const md = markdown(results);
  const files: Array<[string, string | undefined]> = [
    [`${stamp}.json`, json],
    [`${stamp}.md`, md],
    ['latest.json', json],
    ['latest.md', md],
    ['latest.svg', throughputChart(results)],
    ['latest-workers.svg', workersChart(results)],
  ];
  for (const [name, text] of files) if (text !== undefined) await fs.writeFile(path.join(out, name), text);
  // The README's Performance section shows the latest run (not for a partial `--only` run).
  if (!values['no-readme'] && !ONLY) {
    const readme = await fs.readFile('README.md', 'utf8');
    await fs.writeFile('README.md', replaceReadmeSection(readme, readmeSection(results, path.relative('.', out))));
    log('updated the Performance section of README.md');
  }
  console.log(md);
  log(`wrote ${out}/${stamp}.{json,md} and latest.{json,md,svg}, latest-workers.svg (${results.seconds} s)`);
}

process.exitCode = await main();
