/**
 * Scenario 1b: many files. `count` files of `fileSize` bytes, `filesAtOnce` files in flight with
 * `perFile` parts each (the same total in-flight requests for every contender): the SDK (one client,
 * in a child process), lib-storage `Upload`s, and the ceiling (presigned multipart PUTs per file).
 * Per-file costs dominate here: the SDK's init, presign, report and complete calls, and the
 * coordinator's CreateMultipartUpload / CompleteMultipartUpload (and its whole-file read-back check).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { runSdk } from '../lib/child.ts';
import { makeFile } from '../lib/files.ts';
import { type Figure, figure, log, parallel, ratio, round, watch } from '../lib/measure.ts';
import type { Bench } from '../lib/stack.ts';
import { ceilingUpload, libStorageUpload } from './baselines.ts';

export interface ManyFilesOptions {
  count: number;
  fileSize: number;
  filesAtOnce: number;
  perFile: number;
}

export async function manyFiles(b: Bench, o: ManyFilesOptions) {
  const dir = path.join(b.dir, 'many');
  await fs.mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < o.count; i++) {
    const f = path.join(dir, `f${i}.bin`);
    await makeFile(f, o.fileSize);
    files.push(f);
  }
  const total = o.count * o.fileSize;
  log(`many files: ${o.count} × ${o.fileSize / 2 ** 20} MiB, ${o.filesAtOnce} files × ${o.perFile} parts in flight`);

  const w = await watch(b.coordinator.pid, () =>
    runSdk<{ fileIds: string[]; seconds: number; retries: number }>(b.coordinator, [
      'upload-many',
      ...files,
      '--files-concurrency',
      String(o.filesAtOnce),
      '--concurrency',
      String(o.perFile),
      '--fixed',
      '--chunk-size',
      String(b.part),
    ]),
  );
  for (const id of w.result.result.fileIds) b.uploaded(id);
  const sdk: Figure = figure(total, w.result.result.seconds, {
    peakRssMiB: w.result.peakRssMiB,
    cpuSeconds: w.result.cpuSeconds,
    retries: w.result.result.retries,
    coordinator: { peakRssMiB: w.peakRssMiB, cpuPercent: w.cpuPercent },
    command: `node bench/lib/run-ts.mjs bench/lib/sdk-transfer.ts upload-many <${o.count} files> --files-concurrency ${o.filesAtOnce} --concurrency ${o.perFile} --fixed`,
  });
  log(`many files: SDK ${sdk.MBps} MB/s`);

  const timed = async (fn: (i: number) => Promise<unknown>) => {
    const t0 = performance.now();
    await parallel(o.count, o.filesAtOnce, async (i) => {
      await fn(i);
    });
    return figure(total, (performance.now() - t0) / 1000, { note: 'runs in the benchmark process' });
  };
  const libStorage = await timed((i) => libStorageUpload(b, files[i]!, o.fileSize, o.perFile, b.key(`many-ls-${i}`)));
  log(`many files: lib-storage ${libStorage.MBps} MB/s`);
  const ceiling = await timed((i) => ceilingUpload(b, files[i]!, o.fileSize, o.perFile, b.key(`many-ceil-${i}`)));
  log(`many files: ceiling ${ceiling.MBps} MB/s`);
  await fs.rm(dir, { recursive: true, force: true });
  return {
    files: o.count,
    fileSizeMiB: o.fileSize / 2 ** 20,
    filesAtOnce: o.filesAtOnce,
    partsPerFileInFlight: o.perFile,
    filesPerSecond: {
      sdk: round(o.count / sdk.seconds),
      libStorage: round(o.count / libStorage.seconds),
      ceiling: round(o.count / ceiling.seconds),
    },
    sdk,
    libStorage,
    ceiling,
    ratios: { sdkVsLibStorage: ratio(sdk.MBps, libStorage.MBps), sdkVsCeiling: ratio(sdk.MBps, ceiling.MBps) },
  };
}
