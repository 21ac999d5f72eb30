/**
 * SDK upload with its chunks read and hashed in this thread (`hashWorkers: 0`) against N worker
 * threads (issue 8), in one run on the same store: throughput, the client's CPU (process.cpuUsage:
 * every thread of this process), how busy the main thread was (eventLoopUtilization) and the
 * event-loop delay during each upload (perf_hooks.monitorEventLoopDelay at 1 ms resolution, a new
 * histogram per run). The machine's load average is recorded too: on a shared machine the other
 * processes' CPU shows up as event-loop delay.
 *
 *   npm run bench:sdk-workers [-- --size-mib 1024 --workers N --chunk-mib 8 --concurrency 8 --rounds 1]
 *
 * The uploads run in this process, so what is measured is the SDK's own event loop. A coordinator
 * with a fresh database is started for the run (bench/lib/coordinator.ts) unless CONVEYOR_URL and
 * CONVEYOR_API_KEY name one; the S3_* variables pick the store (else the disk store). The file is
 * generated in os.tmpdir() and the uploaded objects are deleted at the end. Rounds alternate
 * 0, N, 0, N… so that neither setting always runs on a warmer store. Prints one JSON object.
 *
 * `benchSdkWorkers(options)` runs the same and returns that object (for bench/run.ts).
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ConveyorClient } from '../client-sdk/index.ts';
import { defaultHashWorkers } from '../client-sdk/node-platform.ts';
import { deleteUploadedObjects, MiB, machine, startCoordinator, storeDescription } from './lib/coordinator.ts';
import { makeFile } from './lib/files.ts';

export interface SdkWorkersOptions {
  /** File size. @default 1024 (1 GiB) */
  sizeMiB?: number;
  /** Threads of the "on" runs. @default the SDK's default, from os.availableParallelism() */
  workers?: number;
  /** @default 8 */
  chunkMiB?: number;
  /** The upload pool's level, pinned (initial = max) so both settings move the same way. @default 8 */
  concurrency?: number;
  /** Runs per setting. @default 1 */
  rounds?: number;
  /** A running coordinator; else one is started (and stopped) for the run. */
  coordinator?: { base: string; apiKey: string };
  /** Progress lines. @default stderr */
  log?: (line: string) => void;
}

export interface SdkWorkersRun {
  hashWorkers: number;
  seconds: number;
  /** File bytes / wall seconds of the whole upload (hashing pass included). */
  mibPerSecond: number;
  /** User + system CPU seconds of this process (all its threads) during the upload. */
  cpuSeconds: number;
  /** cpuSeconds / seconds: cores' worth of CPU the client kept busy. */
  cpuCores: number;
  /**
   * Event-loop delay during the upload, in milliseconds, sampled by a 1 ms timer (so an idle loop
   * reads about 1 ms): how late a socket's callback could run.
   */
  eventLoopDelayMs: { p50: number; p99: number; max: number; mean: number };
  /** Share of the upload's wall time the main thread was busy (performance.eventLoopUtilization). */
  mainThreadBusy: number;
  sha256Matches: boolean;
}

export interface SdkWorkersResult {
  benchmark: 'sdk-workers';
  command: string;
  store: string;
  machine: ReturnType<typeof machine>;
  sizeMiB: number;
  chunkMiB: number;
  concurrency: number;
  workers: number;
  runs: SdkWorkersRun[];
  /** os.loadavg() at the start and the end. */
  loadAverage: { before: number[]; after: number[] };
  /** Means per setting: `off` = 0 threads, `on` = `workers` threads. */
  summary: {
    off: Omit<SdkWorkersRun, 'hashWorkers' | 'sha256Matches'>;
    on: Omit<SdkWorkersRun, 'hashWorkers' | 'sha256Matches'>;
  };
}

export async function benchSdkWorkers(options: SdkWorkersOptions = {}): Promise<SdkWorkersResult> {
  const sizeMiB = options.sizeMiB ?? 1024;
  const workers = options.workers ?? defaultHashWorkers();
  const chunkMiB = options.chunkMiB ?? 8;
  const concurrency = options.concurrency ?? 8;
  const rounds = options.rounds ?? 1;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (workers < 1) throw new RangeError(`workers must be ≥ 1 for the "on" runs, got ${workers}`);

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-bench-workers-'));
  const file = path.join(dir, 'upload.bin');
  const coordinator = options.coordinator ? undefined : await startCoordinator();
  const target = options.coordinator ?? coordinator!;
  const uploaded: string[] = [];
  try {
    log(`sdk-workers: writing a ${sizeMiB} MiB file`);
    const sha256 = await makeFile(file, sizeMiB * MiB);
    const loadBefore = os.loadavg().map(round);
    const runs: SdkWorkersRun[] = [];
    for (let r = 0; r < rounds; r++) {
      for (const hashWorkers of [0, workers]) {
        const run = await uploadOnce(target, file, sha256, { hashWorkers, chunkMiB, concurrency }, uploaded);
        log(
          `sdk-workers: ${hashWorkers} threads: ${run.mibPerSecond} MiB/s, CPU ${run.cpuCores} cores ` +
            `(main thread busy ${Math.round(run.mainThreadBusy * 100)}%), ` +
            `event-loop delay p99 ${run.eventLoopDelayMs.p99} ms (max ${run.eventLoopDelayMs.max} ms)`,
        );
        runs.push(run);
      }
    }
    const mean = (n: number) => {
      const of = runs.filter((r) => r.hashWorkers === n);
      const avg = (f: (r: SdkWorkersRun) => number) => round(of.reduce((s, r) => s + f(r), 0) / of.length);
      return {
        seconds: avg((r) => r.seconds),
        mibPerSecond: avg((r) => r.mibPerSecond),
        cpuSeconds: avg((r) => r.cpuSeconds),
        cpuCores: avg((r) => r.cpuCores),
        mainThreadBusy: avg((r) => r.mainThreadBusy),
        eventLoopDelayMs: {
          p50: avg((r) => r.eventLoopDelayMs.p50),
          p99: avg((r) => r.eventLoopDelayMs.p99),
          max: avg((r) => r.eventLoopDelayMs.max),
          mean: avg((r) => r.eventLoopDelayMs.mean),
        },
      };
    };
    return {
      benchmark: 'sdk-workers',
      command: `npm run bench:sdk-workers -- --size-mib ${sizeMiB} --workers ${workers} --chunk-mib ${chunkMiB} --concurrency ${concurrency} --rounds ${rounds}`,
      store: storeDescription(),
      machine: machine(),
      sizeMiB,
      chunkMiB,
      concurrency,
      workers,
      runs,
      loadAverage: { before: loadBefore, after: os.loadavg().map(round) },
      summary: { off: mean(0), on: mean(workers) },
    };
  } finally {
    await deleteUploadedObjects(uploaded);
    await coordinator?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

async function uploadOnce(
  target: { base: string; apiKey: string },
  file: string,
  sha256: string,
  o: { hashWorkers: number; chunkMiB: number; concurrency: number },
  uploaded: string[],
): Promise<SdkWorkersRun> {
  const client = new ConveyorClient({
    baseUrl: target.base,
    apiKey: target.apiKey,
    resumeStore: false,
    hashWorkers: o.hashWorkers,
  });
  const eld = monitorEventLoopDelay({ resolution: 1 });
  try {
    const cpu0 = process.cpuUsage();
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    eld.enable();
    const r = await client.upload(file, {
      chunkSize: o.chunkMiB * MiB,
      concurrency: { initial: o.concurrency, max: o.concurrency },
    });
    eld.disable();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const elu = performance.eventLoopUtilization(elu0);
    uploaded.push(r.uploadId);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const ms = (ns: number) => round(ns / 1e6);
    return {
      hashWorkers: o.hashWorkers,
      seconds: round(seconds),
      mibPerSecond: round(r.size / MiB / seconds),
      cpuSeconds: round(cpuSeconds),
      cpuCores: round(cpuSeconds / seconds),
      eventLoopDelayMs: {
        p50: ms(eld.percentile(50)),
        p99: ms(eld.percentile(99)),
        max: ms(eld.max),
        mean: ms(eld.mean),
      },
      mainThreadBusy: round(elu.utilization),
      sha256Matches: r.sha256 === sha256,
    };
  } finally {
    eld.disable();
    client.close();
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) {
  const { values } = parseArgs({
    options: {
      'size-mib': { type: 'string', default: '1024' },
      workers: { type: 'string' },
      'chunk-mib': { type: 'string', default: '8' },
      concurrency: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '1' },
    },
  });
  const result = await benchSdkWorkers({
    sizeMiB: Number(values['size-mib']),
    ...(values.workers !== undefined ? { workers: Number(values.workers) } : {}),
    chunkMiB: Number(values['chunk-mib']),
    concurrency: Number(values.concurrency),
    rounds: Number(values.rounds),
    ...(process.env.CONVEYOR_URL && process.env.CONVEYOR_API_KEY
      ? { coordinator: { base: process.env.CONVEYOR_URL, apiKey: process.env.CONVEYOR_API_KEY } }
      : {}),
  });
  console.log(JSON.stringify(result, null, 2));
}
