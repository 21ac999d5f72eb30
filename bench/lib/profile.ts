/**
 * Summarises V8 CPU profiles (`node --cpu-prof`, one file per thread): where a process's time went,
 * by category and by function (self time).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { round } from './measure.ts';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  threads: number;
  /** Wall time covered by the profiles of all threads (s). */
  sampledSeconds: number;
  /** Self time by category, in seconds, summed over threads. */
  categories: Record<string, number>;
  /** The functions with the most self time. */
  top: Array<{ fn: string; seconds: number }>;
}

function category(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle (waiting for I/O)';
  if (fn === '(garbage collector)') return 'garbage collection';
  if (fn === '(program)') return 'V8/native (program)';
  if (/hash|digest|md5|sha/i.test(fn) || /hash/i.test(url)) return 'hashing';
  if (url.includes('/client-sdk/')) return 'SDK code';
  if (url.startsWith('node:')) return 'node internals (streams, http, fs)';
  if (url.includes('node_modules')) return 'dependencies';
  return url ? 'other JS' : 'native';
}

export async function summariseProfiles(dir: string, topN = 12): Promise<ProfileSummary> {
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.cpuprofile'));
  const categories: Record<string, number> = {};
  const byFn = new Map<string, number>();
  let total = 0;
  for (const f of files) {
    const p = JSON.parse(await fs.readFile(path.join(dir, f), 'utf8')) as CpuProfile;
    const nodes = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
    p.samples.forEach((id, i) => {
      const us = p.timeDeltas[i] ?? 0;
      const cf = nodes.get(id);
      if (!cf) return;
      total += us;
      const c = category(cf.url, cf.functionName);
      categories[c] = (categories[c] ?? 0) + us;
      const where = cf.url ? ` ${cf.url.replace(/^.*\/(client-sdk|node_modules)\//, '$1/')}:${cf.lineNumber + 1}` : '';
      const key = `${cf.functionName || '(anonymous)'}${where}`;
      byFn.set(key, (byFn.get(key) ?? 0) + us);
    });
  }
  return {
    threads: files.length,
    sampledSeconds: round(total / 1e6, 2),
    categories: Object.fromEntries(
      Object.entries(categories)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, round(v / 1e6, 2)]),
    ),
    top: [...byFn.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([fn, us]) => ({ fn, seconds: round(us / 1e6, 2) })),
  };
}
