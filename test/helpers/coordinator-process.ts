import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * The real coordinator (`node --import tsx server/main.ts`) as a child process, so a test can
 * SIGKILL it, restart it on the same port and database, or run two of them side by side.
 */
export interface CoordinatorProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** What it printed so far (JSON log lines). */
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string | null>;
  /** SIGKILL: no drain, no cleanup, as a crash or the OOM killer. */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<void>;
  /** Peak resident memory of the process so far, in bytes (VmHWM), or its current RSS. */
  memory(): Promise<{ rss: number; peak: number }>;
}

export interface CoordinatorProcessOptions {
  port: number;
  databaseUrl: string;
  /** `principal:key,…` */
  apiKeys: string;
  /** With S3: S3_* and AWS_* are passed on from this process's environment. */
  store: 's3' | 'disk';
  dataDir?: string;
  env?: Record<string, string>;
}

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

export async function startCoordinatorProcess(opts: CoordinatorProcessOptions): Promise<CoordinatorProcess> {
  const dataDir = opts.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-proc-')));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(DATABASE_URL|S3_|AWS_|API_KEYS|PORT|HOST|DATA_DIR|PUBLIC_URL|LOG_LEVEL)/.test(k)) env[k] = v;
    else if (opts.store === 's3' && /^(S3_|AWS_)/.test(k)) env[k] = v;
  }
  Object.assign(env, {
    PORT: String(opts.port),
    HOST: '127.0.0.1',
    DATABASE_URL: opts.databaseUrl,
    API_KEYS: opts.apiKeys,
    DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    ...opts.env,
  });
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out += d;
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | string | null>((r) => child.once('exit', (code, signal) => r(code ?? signal)));
  const url = `http://127.0.0.1:${opts.port}`;
  const proc: CoordinatorProcess = {
    url,
    port: opts.port,
    child,
    output: () => out,
    exited,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    memory: async () => {
      const status = await fs.readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
      return { rss: kb('VmRSS'), peak: kb('VmHWM') };
    },
  };
  const t0 = Date.now();
  for (;;) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) break;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`coordinator exited early:\n${out}`);
    if (Date.now() - t0 > 60_000) {
      child.kill('SIGKILL');
      throw new Error(`coordinator not ready within 60 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return proc;
}
