// Preloaded into a measured process (`node --import ./bench/lib/report-peak.mjs …`): when it exits,
// writes its VmHWM (the kernel's record of its peak RSS) and VmRSS to $BENCH_PEAK_FILE as JSON.
// Plain JavaScript so that it adds nothing (no loader) to the process it measures.
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env.BENCH_PEAK_FILE;
if (out) {
  process.on('exit', () => {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    writeFileSync(out, JSON.stringify({ vmHWM: kb('VmHWM'), vmRSS: kb('VmRSS') }));
  });
}
