/**
 * Runs the SDK (bench/lib/sdk-transfer.ts) in a child process with bench/lib/report-peak.mjs
 * preloaded: its result line, its peak RSS (VmHWM at exit) and its CPU time.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cpuSecondsOf, round } from './measure.ts';

const PRELOAD = path.resolve('bench/lib/report-peak.mjs');

export interface ChildRun<T> {
  result: T;
  peakRssMiB: number;
  /** CPU seconds (user + system) of the child, sampled just before it exited. */
  cpuSeconds: number;
  wallSeconds: number;
  command: string;
}

/** `node bench/lib/run-ts.mjs bench/lib/sdk-transfer.ts <args>` against `coordinator`. */
export async function runSdk<T = Record<string, unknown>>(
  coordinator: { base: string; apiKey: string },
  args: string[],
  extraNodeArgs: string[] = [],
): Promise<ChildRun<T>> {
  const peakFile = path.join(os.tmpdir(), `conveyor-peak-${randomBytes(4).toString('hex')}.json`);
  const argv = [...extraNodeArgs, '--import', PRELOAD, 'bench/lib/run-ts.mjs', 'bench/lib/sdk-transfer.ts', ...args];
  const t0 = performance.now();
  const child = spawn(process.execPath, argv, {
    env: {
      ...process.env,
      CONVEYOR_URL: coordinator.base,
      CONVEYOR_API_KEY: coordinator.apiKey,
      BENCH_PEAK_FILE: peakFile,
      NODE_NO_WARNINGS: '1',
    },
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
  let cpu = 0;
  const timer = setInterval(() => {
    cpu = Math.max(cpu, cpuSecondsOf(child.pid!));
  }, 100);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearInterval(timer);
  const wallSeconds = (performance.now() - t0) / 1000;
  let peak = 0;
  try {
    peak = (JSON.parse(readFileSync(peakFile, 'utf8')) as { vmHWM: number }).vmHWM;
  } catch {
    // it died before its exit handler ran
  }
  await fs.rm(peakFile, { force: true });
  const shown = args.map((a) => (a.startsWith('/') ? path.basename(a) : a)).join(' ');
  if (code !== 0) throw new Error(`SDK ${shown} exited with ${code}: ${stderr.slice(-2000)}`);
  const line = stdout.trim().split('\n').at(-1) ?? '{}';
  return {
    result: JSON.parse(line) as T,
    peakRssMiB: round(peak / 2 ** 20),
    cpuSeconds: round(cpu, 2),
    wallSeconds: round(wallSeconds, 2),
    command: `node bench/lib/run-ts.mjs bench/lib/sdk-transfer.ts ${shown}`,
  };
}
