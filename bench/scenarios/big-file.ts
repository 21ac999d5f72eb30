/**
 * Scenario 8 (full mode): one 5 GiB file up and down through the SDK (child processes, their peak
 * RSS from VmHWM), the coordinator watched throughout; the downloaded file's SHA-256 is checked
 * against the source's, on top of the SDK's own whole-file check and the coordinator's.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { runSdk } from '../lib/child.ts';
import { makeFile, sha256File } from '../lib/files.ts';
import { figure, log, watch } from '../lib/measure.ts';
import type { Bench } from '../lib/stack.ts';

export async function bigFile(b: Bench, o: { size: number; concurrency: number }) {
  const file = path.join(b.dir, 'huge.bin');
  const out = path.join(b.dir, 'huge.out');
  log(`big file: writing ${o.size / 2 ** 30} GiB`);
  const sha = await makeFile(file, o.size);
  try {
    const c = String(o.concurrency);
    const up = await watch(b.coordinator.pid, () =>
      runSdk<{ fileId: string; sha256: string; seconds: number; phases: Record<string, number> }>(b.coordinator, [
        'upload',
        file,
        '--concurrency',
        c,
        '--fixed',
        '--chunk-size',
        String(b.part),
      ]),
    );
    b.uploaded(up.result.result.fileId);
    if (up.result.result.sha256 !== sha) throw new Error('big file: the SDK declared another SHA-256');
    await fs.rm(file, { force: true }); // 5 GiB less on disk while the copy comes back
    const down = await watch(b.coordinator.pid, () =>
      runSdk<{ seconds: number; verified: boolean; phases: Record<string, number> }>(b.coordinator, [
        'download',
        up.result.result.fileId,
        out,
        '--concurrency',
        c,
        '--fixed',
      ]),
    );
    const got = await sha256File(out);
    log(
      `big file: upload ${up.result.result.seconds.toFixed(1)} s, download ${down.result.result.seconds.toFixed(1)} s`,
    );
    return {
      sizeGiB: o.size / 2 ** 30,
      concurrency: o.concurrency,
      upload: figure(o.size, up.result.result.seconds, {
        phases: up.result.result.phases,
        peakRssMiB: up.result.peakRssMiB,
        coordinator: { peakRssMiB: up.peakRssMiB, cpuPercent: up.cpuPercent },
        command: up.result.command,
      }),
      download: figure(o.size, down.result.result.seconds, {
        phases: down.result.result.phases,
        peakRssMiB: down.result.peakRssMiB,
        coordinator: { peakRssMiB: down.peakRssMiB, cpuPercent: down.cpuPercent },
        command: down.result.command,
      }),
      sha256: sha,
      verified: down.result.result.verified && got === sha,
    };
  } finally {
    await fs.rm(file, { force: true });
    await fs.rm(out, { force: true });
  }
}
