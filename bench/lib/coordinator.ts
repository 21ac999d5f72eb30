/**
 * Shared benchmark plumbing: a real coordinator child process (`node --import tsx server/main.ts`)
 * with a fresh database of its own and one API key, plus RSS sampling from /proc.
 *
 * Uses DATABASE_URL (else the machine's PostgreSQL at 127.0.0.1:5432) to create and later drop a
 * throw-away database; the S3_* variables of the caller's environment pick the store (else the
 * local-disk store under a temporary DATA_DIR).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../server/embedded.ts';

export const MiB = 1024 * 1024;

export interface Coordinator {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** The bearer token accepted by the coordinator. */
  apiKey: string;
  pid: number;
  process: ChildProcess;
  /** Kills the process, drops its database, removes its data directory. */
  stop(): Promise<void>;
}

export interface CoordinatorOptions {
  /** Extra environment for the coordinator (its limits, budgets, …). */
  env?: Record<string, string>;
  /** How long to wait for `/readyz`. @default 60_000 */
  readyTimeoutMs?: number;
  /** Keep the coordinator's own rate-bucket defaults (otherwise raised to 100,000/s). @default false */
  defaults?: boolean;
  /** Extra `node` flags (e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile the coordinator). */
  nodeArgs?: string[];
}

/** Starts a coordinator on a free port with a fresh database; resolves once `/readyz` answers 200. */
export async function startCoordinator(opts: CoordinatorOptions = {}): Promise<Coordinator> {
  const apiKey = `bench-key-${randomBytes(12).toString('hex')}`;
  const dbUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const dbName = `conveyor_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: dbUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(dbUrl);
  url.pathname = `/${dbName}`;
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dataDir = path.join(os.tmpdir(), `conveyor-bench-${randomBytes(4).toString('hex')}`);
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', 'server/main.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: url.toString(),
      PORT: String(port),
      DATA_DIR: dataDir,
      API_KEYS: `bench:${apiKey}`,
      LOG_LEVEL: 'warn',
      NODE_NO_WARNINGS: '1',
      ...(opts.defaults ? {} : { RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000' }),
      ...opts.env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    // A coordinator stuck in start-up may never finish a graceful shutdown.
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(kill);
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end().catch(() => {});
    await fs.rm(dataDir, { recursive: true, force: true }).catch(() => {});
  };
  try {
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the coordinator exited with code ${child.exitCode}`);
      const ok = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) })
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error('the coordinator did not become ready');
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { base, apiKey, pid: child.pid!, process: child, stop };
}

/** A process's resident set size in bytes (VmRSS), 0 once it is gone. */
export function rssOf(pid: number): number {
  return statusField(pid, 'VmRSS');
}

/** A process's peak resident set size in bytes (VmHWM, the kernel's high-water mark), 0 once it is gone. */
export function hwmOf(pid: number): number {
  return statusField(pid, 'VmHWM');
}

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples a process's RSS every `everyMs` while `work` runs; returns the peak. */
export async function peakRss<T>(
  pid: number,
  work: () => Promise<T>,
  everyMs = 50,
): Promise<{ result: T; peak: number }> {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, everyMs);
  try {
    const result = await work();
    return { result, peak: Math.max(peak, rssOf(pid)) };
  } finally {
    clearInterval(timer);
  }
}

/** Bytes as MiB with one decimal. */
export const mib = (n: number) => Math.round((n / MiB) * 10) / 10;

/** The machine, for the record. */
export function machine() {
  return {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model.trim(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

/** Where the coordinator stores bytes, as the environment says. */
export function storeDescription(): string {
  return process.env.S3_BUCKET ? `s3 ${process.env.S3_ENDPOINT ?? 'AWS'} (bucket ${process.env.S3_BUCKET})` : 'disk';
}

/**
 * Deletes the objects of completed uploads (the coordinator stores upload `id` at `uploads/<id>`)
 * when the store is S3: a benchmark's gigabytes must not stay in the bucket. Best effort.
 */
export async function deleteUploadedObjects(uploadIds: string[]): Promise<void> {
  if (!process.env.S3_BUCKET || uploadIds.length === 0) return;
  const { S3Client, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const s3 = new S3Client({
    region: process.env.S3_REGION ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(process.env.S3_ENDPOINT ? { endpoint: process.env.S3_ENDPOINT } : {}),
    forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true',
  });
  try {
    for (const id of uploadIds) {
      await s3
        .send(new DeleteObjectCommand({ Bucket: process.env.S3_BUCKET, Key: `uploads/${id}` }), {
          abortSignal: AbortSignal.timeout(30_000),
        })
        .catch((err: unknown) => process.stderr.write(`could not delete uploads/${id}: ${(err as Error).message}\n`));
    }
  } finally {
    s3.destroy();
  }
}
