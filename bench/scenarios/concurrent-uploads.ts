/**
 * Target "0 failed uploads at 100 concurrent uploads": 100 real SDK uploads at once (one client in a
 * child process, each upload with its own pool), against a second coordinator that runs with the
 * production defaults — rate bucket 200/s (burst 400), 32 inflight chunks per upload, 256 per
 * principal — so the SDK has to ride out real `429`s. Counts failed uploads, retries and 429s.
 */
import path from 'node:path';
import { runSdk } from '../lib/child.ts';
import { startCoordinator } from '../lib/coordinator.ts';
import { makeFile } from '../lib/files.ts';
import { figure, log, round, watch } from '../lib/measure.ts';
import type { Bench } from '../lib/stack.ts';

async function throttledCount(base: string): Promise<Record<string, number>> {
  const text = await fetch(`${base}/metrics`)
    .then((r) => r.text())
    .catch(() => '');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^throttled_requests_total\{limit="(\w+)"\} (\d+(?:\.\d+)?)/gm))
    out[m[1]!] = Number(m[2]);
  return out;
}

export async function concurrentUploads(b: Bench, o: { uploads: number; fileSize: number; perUpload: number }) {
  const file = path.join(b.dir, 'concurrent.bin');
  await makeFile(file, o.fileSize);
  const co = await startCoordinator({ env: { LOG_LEVEL: 'error' }, defaults: true });
  try {
    log(`${o.uploads} concurrent SDK uploads of ${o.fileSize / 2 ** 20} MiB against a coordinator with default limits`);
    const w = await watch(co.pid, () =>
      runSdk<{ fileIds: string[]; failed: number; failures: string[]; retries: number; seconds: number }>(co, [
        'upload-many',
        ...Array.from({ length: o.uploads }, () => file),
        '--files-concurrency',
        String(o.uploads),
        '--concurrency',
        String(o.perUpload),
        '--fixed',
        '--chunk-size',
        String(b.part),
      ]),
    );
    const r = w.result.result;
    for (const id of r.fileIds) b.uploaded(id);
    const throttled = await throttledCount(co.base);
    log(`concurrent uploads: ${r.fileIds.length} completed, ${r.failed} failed, ${r.retries} retries`);
    return {
      uploads: o.uploads,
      fileSizeMiB: o.fileSize / 2 ** 20,
      chunksPerUploadInFlight: o.perUpload,
      coordinatorSettings:
        'production defaults: RATE_LIMIT_PER_SECOND 200, RATE_LIMIT_BURST 400, MAX_INFLIGHT_PER_UPLOAD 32, MAX_INFLIGHT_PER_PRINCIPAL 256',
      completed: r.fileIds.length,
      failed: r.failed,
      failures: r.failures.slice(0, 5),
      retries: r.retries,
      retriesPerUpload: round(r.retries / o.uploads, 2),
      throttledByLimit: throttled,
      ...figure(o.uploads * o.fileSize, r.seconds),
      sdkPeakRssMiB: w.result.peakRssMiB,
      coordinator: { peakRssMiB: w.peakRssMiB, cpuPercent: w.cpuPercent },
      command: w.result.command.replace(/(concurrent\.bin ?)+/, `<the same file × ${o.uploads}> `),
    };
  } finally {
    await co.stop();
  }
}
