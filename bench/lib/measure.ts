/** Small measuring helpers shared by the scenarios of `npm run bench`. */
import { readFileSync } from 'node:fs';
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
