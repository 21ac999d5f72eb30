/**
 * SDK memory benchmark (issue 4: "the uploader's peak RSS for a 2 GB file stays under
 * concurrency × chunk size + 100 MB"). Generates a file in os.tmpdir(), starts a real coordinator
 * (fresh database), then runs the CLI as a separate process — `conveyor upload <file> --json
 * --concurrency C --max-concurrency C --chunk-size S`, then `conveyor download` of the same file —
 * and records that process's peak RSS two ways: VmRSS sampled from /proc every 50 ms, and VmHWM
 * (the kernel's own high-water mark) read by a preload as the process exits. The pool is pinned at C
 * (`--max-concurrency C`): otherwise it may grow to 16 and the bound would be 16 × S.
 *
 * It also measures the fixed cost of the runtime the CLI runs on (bare node, node + the tsx loader,
 * the CLI printing its help), which the bound has to absorb too.
 *
 *   npm run bench:sdk-memory [-- --size-mib 2048 --concurrency 6 --chunk-mib 8 --via cli|sdk]
 *
 * `--via sdk` runs bench/lib/sdk-transfer.ts (the SDK without the CLI) instead. Uses DATABASE_URL
 * (else 127.0.0.1:5432) and the S3_* variables (else the disk store). Prints one JSON object.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  type Coordinator,
  deleteUploadedObjects,
  MiB,
  machine,
  mib,
  rssOf,
  startCoordinator,
  storeDescription,
} from './lib/coordinator.ts';
import { makeFile, sha256File } from './lib/files.ts';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '2048' },
    concurrency: { type: 'string', default: '6' },
    'chunk-mib': { type: 'string', default: '8' },
    via: { type: 'string', default: 'cli' },
  },
});
const SIZE = Number(values['size-mib']) * MiB;
const C = Number(values.concurrency);
const S = Number(values['chunk-mib']) * MiB;
const VIA = values.via === 'sdk' ? 'sdk' : 'cli';
const BOUND = C * S + 100 * MiB;
const PRELOAD = path.resolve('bench/lib/report-peak.mjs');

interface Measured {
  command: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Highest VmRSS seen by sampling every 50 ms. */
  sampledPeak: number;
  /** VmHWM at exit: the true peak, samples or not. */
  hwm: number;
  samples: number;
  wallSeconds: number;
}

/** Runs `node <args>` with the peak-reporting preload and samples its RSS every 50 ms. */
async function measure(args: string[], env: Record<string, string> = {}): Promise<Measured> {
  const peakFile = path.join(os.tmpdir(), `conveyor-peak-${randomBytes(4).toString('hex')}.json`);
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', PRELOAD, ...args], {
    env: { ...process.env, ...env, BENCH_PEAK_FILE: peakFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  let sampledPeak = 0;
  let samples = 0;
  const timer = setInterval(() => {
    const r = rssOf(child.pid!);
    if (r > 0) {
      sampledPeak = Math.max(sampledPeak, r);
      samples++;
    }
  }, 50);
  const exitCode = await new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  clearInterval(timer);
  const wallSeconds = (performance.now() - t0) / 1000;
  let hwm = 0;
  try {
    hwm = (JSON.parse(readFileSync(peakFile, 'utf8')) as { vmHWM: number }).vmHWM;
  } catch {
    // the process died before its exit handler ran
  }
  await fs.rm(peakFile, { force: true });
  return {
    command: `node ${args.join(' ')}`,
    exitCode,
    stdout,
    stderr,
    sampledPeak,
    hwm,
    samples,
    wallSeconds,
  };
}

/** Writes `size` bytes: a random 8 MiB block, stamped with its index so no two blocks are equal. Returns the SHA-256. */

function parseJsonLine(text: string): Record<string, unknown> {
  const line = text.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return {};
  }
}

function verdict(m: Measured) {
  const peak = Math.max(m.hwm, m.sampledPeak);
  return {
    peakRssMiB: mib(peak),
    sampledPeakRssMiB: mib(m.sampledPeak),
    vmHwmMiB: mib(m.hwm),
    samples: m.samples,
    boundMiB: mib(BOUND),
    pass: m.exitCode === 0 && peak <= BOUND,
  };
}

async function baselines() {
  const idle = (code: string) => ['--input-type=module', '-e', code];
  const bare = await measure(idle('0'));
  const tsxEsm = await measure(['--import', 'tsx', ...idle('0')]);
  const tsxCjs = await measure(['--require', 'tsx/cjs', '-e', '0']);
  const cliHelp = await measure(['client-sdk/bin/conveyor.mjs', '--help']);
  return {
    /** `node -e 0` */
    nodeMiB: mib(bare.hwm),
    /** `node --import tsx`: the ESM loader hooks run on a thread with a V8 isolate of their own. */
    nodeWithTsxEsmLoaderMiB: mib(tsxEsm.hwm),
    /** `node --require tsx/cjs`: tsx's in-thread CommonJS hook, what bin/conveyor.mjs uses. */
    nodeWithTsxCjsHookMiB: mib(tsxCjs.hwm),
    /** `conveyor --help`: node + tsx + the CLI and SDK modules loaded, nothing done. */
    cliIdleMiB: mib(cliHelp.hwm),
  };
}

async function main() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-sdk-memory-'));
  const file = path.join(dir, 'big.bin');
  const out = path.join(dir, 'big.out');
  let server: Coordinator | undefined;
  const uploaded: string[] = [];
  try {
    const base = await baselines();
    const sha256 = await makeFile(file, SIZE);
    server = await startCoordinator({ env: { MAX_INFLIGHT_PER_UPLOAD: '64' } });
    const env = {
      CONVEYOR_URL: server.base,
      CONVEYOR_API_KEY: server.apiKey,
      CONVEYOR_STATE_DIR: path.join(dir, 'state'),
    };
    const conc = ['--concurrency', String(C), '--max-concurrency', String(C)];
    const runner =
      VIA === 'cli' ? ['client-sdk/bin/conveyor.mjs'] : ['bench/lib/run-ts.mjs', 'bench/lib/sdk-transfer.ts'];

    const upload = await measure(
      [...runner, 'upload', file, '--json', '--no-resume', ...conc, '--chunk-size', String(S)],
      env,
    );
    if (upload.exitCode !== 0) throw new Error(`upload failed (${upload.exitCode}): ${upload.stderr}`);
    const up = parseJsonLine(upload.stdout) as { fileId: string; sha256: string; seconds: number };
    uploaded.push(up.fileId);
    if (up.sha256 !== sha256) throw new Error(`upload declared ${up.sha256}, the file is ${sha256}`);

    const download = await measure([...runner, 'download', up.fileId, out, '--json', '--no-resume', ...conc], env);
    if (download.exitCode !== 0) throw new Error(`download failed (${download.exitCode}): ${download.stderr}`);
    const down = parseJsonLine(download.stdout) as { sha256: string; verified: boolean; seconds: number };
    const outSha = await sha256File(out);
    if (outSha !== sha256) throw new Error(`downloaded bytes differ: ${outSha} vs ${sha256}`);

    const MB = SIZE / 1e6;
    console.log(
      JSON.stringify(
        {
          benchmark: 'sdk-memory',
          command: `npm run bench:sdk-memory -- --size-mib ${SIZE / MiB} --concurrency ${C} --chunk-mib ${S / MiB} --via ${VIA}`,
          machine: machine(),
          store: storeDescription(),
          via: VIA,
          sizeMiB: SIZE / MiB,
          concurrency: C,
          chunkSizeMiB: S / MiB,
          boundMiB: mib(BOUND),
          boundFormula: `${C} × ${S / MiB} MiB + 100 MiB`,
          runtimeBaselinePeakRss: base,
          upload: {
            command: upload.command,
            ...verdict(upload),
            seconds: up.seconds,
            MBps: Math.round(MB / up.seconds),
            wallSeconds: Math.round(upload.wallSeconds * 10) / 10,
          },
          download: {
            command: download.command,
            ...verdict(download),
            verified: down.verified && outSha === sha256,
            seconds: down.seconds,
            MBps: Math.round(MB / down.seconds),
            wallSeconds: Math.round(download.wallSeconds * 10) / 10,
          },
          pass: verdict(upload).pass && verdict(download).pass,
        },
        null,
        2,
      ),
    );
  } finally {
    await deleteUploadedObjects(uploaded);
    await server?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

await main();
