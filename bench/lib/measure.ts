/** Small measuring helpers shared by the scenarios of `npm run bench`. */
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { rssOf } from './coordinator.ts';

export const MB = 1e6;
export const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
export const ratio = (a: number, b: number) => (b > 0 ? round(a / b, 2) : 0);
export const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One throughput figure. MB/s = 10^6 bytes per second. */
export interface Figure {
  seconds: number;
  MBps: number;
  /** Seconds per phase (SDK: hashing, transferring, completing / verifying). */
  phases?: Record<string, number>;
  /** Peak RSS of the process that moved the bytes, when it ran alone in a child process. */
  peakRssMiB?: number;
  /** CPU seconds of that process. */
  cpuSeconds?: number;
  retries?: number;
  /** The coordinator while this ran: peak RSS and CPU (% of one core). */
  coordinator?: { peakRssMiB?: number; cpuPercent?: number };
  command?: string;
  note?: string;
  /** Seconds of every run, when the figure is a median. */
  runs?: number[];
  /** Where the machine's CPU went while this ran (core-seconds): see `machineCpu`. */
  machineCpu?: MachineCpu;
}

/**
 * The machine's CPU over a run, in core-seconds: everything (from /proc/stat), the S3 server's
 * daemons (radosgw, ceph-*), PostgreSQL's processes, the coordinator, and the rest (the client
 * that moved the bytes, the benchmark itself, anything else). On a machine where all of them share
 * the cores, this is what a throughput figure is made of.
 */
export interface MachineCpu {
  /** Busy share of all cores over the run, 0–1. */
  busy: number;
  total: number;
  s3: number;
  postgres: number;
  coordinator: number;
  clientAndRest: number;
}

const S3_DAEMONS = /^(radosgw|ceph-osd|ceph-mon|ceph-mgr|minio|localstack)/;

function machineSnapshot(coordinatorPid: number | undefined) {
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const ticks = f.map(Number);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  const all = ticks.reduce((a, b) => a + b, 0);
  const byPid = new Map<number, { group: 's3' | 'postgres' | 'coordinator'; cpu: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const group =
      pid === coordinatorPid
        ? 'coordinator'
        : S3_DAEMONS.test(comm)
          ? 's3'
          : comm === 'postgres'
            ? 'postgres'
            : undefined;
    if (group) byPid.set(pid, { group, cpu: cpuSecondsOf(pid) });
  }
  return { busy: (all - idle) / 100, all: all / 100, byPid };
}

/** Runs `work` and says where the machine's CPU went meanwhile (processes that exit during it are "rest"). */
export async function machineCpu<T>(
  coordinatorPid: number | undefined,
  work: () => Promise<T>,
): Promise<{ result: T; cpu: MachineCpu }> {
  const a = machineSnapshot(coordinatorPid);
  const result = await work();
  const b = machineSnapshot(coordinatorPid);
  const groups = { s3: 0, postgres: 0, coordinator: 0 };
  for (const [pid, now] of b.byPid) groups[now.group] += now.cpu - (a.byPid.get(pid)?.cpu ?? 0);
  const total = b.busy - a.busy;
  return {
    result,
    cpu: {
      busy: round(total / Math.max(1e-9, b.all - a.all), 2),
      total: round(total, 2),
      s3: round(groups.s3, 2),
      postgres: round(groups.postgres, 2),
      coordinator: round(groups.coordinator, 2),
      clientAndRest: round(Math.max(0, total - groups.s3 - groups.postgres - groups.coordinator), 2),
    },
  };
}

export const figure = (bytes: number, seconds: number, extra: Partial<Figure> = {}): Figure => ({
  seconds: round(seconds, 2),
  MBps: round(bytes / MB / seconds),
  ...extra,
});

/** Runs `fn` `runs` times and keeps the run with the median time. */
export async function median<T extends Figure>(runs: number, fn: () => Promise<T>): Promise<T> {
  const all: T[] = [];
  for (let i = 0; i < runs; i++) all.push(await fn());
  const sorted = [...all].sort((a, b) => a.seconds - b.seconds);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return runs > 1 ? { ...mid, runs: all.map((r) => round(r.seconds, 2)) } : mid;
}

/** `n` items, `c` at a time. */
export async function parallel(n: number, c: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(c, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

/** The p-th percentile (0–100) of `xs` (nearest rank), 0 for none. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** avg / p50 / p95 / p99 / max in ms, rounded. */
export function latencyStats(ms: number[]) {
  const avg = ms.length ? ms.reduce((a, b) => a + b, 0) / ms.length : 0;
  return {
    n: ms.length,
    avgMs: round(avg, 1),
    p50Ms: round(percentile(ms, 50), 1),
    p95Ms: round(percentile(ms, 95), 1),
    p99Ms: round(percentile(ms, 99), 1),
    maxMs: round(percentile(ms, 100), 1),
  };
}

/** A process's user + system CPU time in seconds (from /proc/<pid>/stat), 0 once it is gone. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

/** Watches a process while `work` runs: its peak RSS (sampled) and its CPU use (share of one core). */
export async function watch<T>(
  pid: number | undefined,
  work: () => Promise<T>,
  everyMs = 100,
): Promise<{ result: T; peakRssMiB?: number; cpuPercent?: number }> {
  if (pid === undefined) return { result: await work() };
  let peak = rssOf(pid);
  const cpu0 = cpuSecondsOf(pid);
  const t0 = performance.now();
  const timer = setInterval(() => {
    peak = Math.max(peak, rssOf(pid));
  }, everyMs);
  try {
    const result = await work();
    peak = Math.max(peak, rssOf(pid));
    const seconds = (performance.now() - t0) / 1000;
    return {
      result,
      peakRssMiB: round(peak / 2 ** 20),
      cpuPercent: round(((cpuSecondsOf(pid) - cpu0) / seconds) * 100, 0),
    };
  } finally {
    clearInterval(timer);
  }
}

/** One node:http request; a 2xx GET body may be copied into `into`. */
export function httpRequest(
  agent: http.Agent,
  url: string,
  method: 'PUT' | 'GET',
  headers: Record<string, string>,
  body?: Uint8Array,
  into?: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; length: number; text: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(url, { method, headers, agent }, (res) => {
      let got = 0;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => {
        if (into && res.statusCode! < 300) d.copy(into, got);
        else parts.push(d);
        got += d.length;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          length: got,
          text: Buffer.concat(parts).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}
