/**
 * Scenarios 1, 2 and 8 (memory): one large file up and down, every contender at the same part size
 * and concurrency, in this run on this S3; then throughput against concurrency (the chart).
 *
 * The SDK runs in a child process (bench/lib/sdk-transfer.ts) so that its peak RSS and CPU are its
 * own; its time is measured inside that process, from the call to the result, so node's start-up
 * is not counted. The baselines run in this process. The coordinator's peak RSS and CPU are
 * sampled during each contender.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { runSdk } from '../lib/child.ts';
import { type Coordinator, startCoordinator } from '../lib/coordinator.ts';
import { makeFile, sha256File } from '../lib/files.ts';
import { type Figure, figure, log, machineCpu, median, ratio, round, watch } from '../lib/measure.ts';
import { type ProfileSummary, summariseProfiles } from '../lib/profile.ts';
import { BENCH_COORDINATOR_ENV, type Bench } from '../lib/stack.ts';
import {
  ceilingDownload,
  ceilingUpload,
  getObjectDownload,
  libStorageUpload,
  serverStreamDownload,
} from './baselines.ts';

export interface ThroughputOptions {
  size: number;
  concurrency: number;
  runs: number;
  sweep: number[];
  sweepSize: number;
  /** Profile one more SDK upload when it misses its targets. */
  profileOnMiss: boolean;
}

interface SdkUploadOut {
  fileId: string;
  sha256: string;
  retries: number;
  seconds: number;
  phases: Record<string, number>;
}

const MiB = 1024 * 1024;

/** One SDK upload in a child process, as a Figure (+ fileId). */
async function sdkUpload(
  b: Bench,
  file: string,
  size: number,
  c: number,
  mode: 'fixed' | 'adaptive' | 'relay',
  co: Coordinator = b.coordinator,
) {
  const args = ['upload', file, '--concurrency', String(c), '--chunk-size', String(b.part)];
  if (mode !== 'adaptive') args.push('--fixed');
  if (mode === 'relay') args.push('--transport', 'relay');
  const m = await machineCpu(co.pid, () => watch(co.pid, () => runSdk<SdkUploadOut>(co, args)));
  const w = m.result;
  const r = w.result;
  b.uploaded(r.result.fileId);
  return {
    ...figure(size, r.result.seconds, {
      phases: r.result.phases,
      peakRssMiB: r.peakRssMiB,
      cpuSeconds: r.cpuSeconds,
      retries: r.result.retries,
      coordinator: { peakRssMiB: w.peakRssMiB, cpuPercent: w.cpuPercent },
      command: r.command,
      machineCpu: m.cpu,
    }),
    fileId: r.result.fileId,
    sha256: r.result.sha256,
  };
}

async function sdkDownload(b: Bench, fileId: string, size: number, c: number, out: string): Promise<Figure> {
  const args = ['download', fileId, out, '--concurrency', String(c), '--fixed'];
  const m = await machineCpu(b.coordinator.pid, () =>
    watch(b.coordinator.pid, () =>
      runSdk<{ seconds: number; phases: Record<string, number>; verified: boolean; retries: number }>(
        b.coordinator,
        args,
      ),
    ),
  );
  const w = m.result;
  const r = w.result;
  return figure(size, r.result.seconds, {
    phases: r.result.phases,
    peakRssMiB: r.peakRssMiB,
    cpuSeconds: r.cpuSeconds,
    retries: r.result.retries,
    coordinator: { peakRssMiB: w.peakRssMiB, cpuPercent: w.cpuPercent },
    command: r.command,
    machineCpu: m.cpu,
    note: 'includes the SDK’s whole-file SHA-256 check (phase verifying)',
  });
}

/** A baseline in this process, with the coordinator watched too (it should be idle). */
async function inProcess(b: Bench, fn: () => Promise<Figure>): Promise<Figure> {
  const rss0 = process.memoryUsage().rss;
  const m = await machineCpu(b.coordinator.pid, () => watch(b.coordinator.pid, fn));
  const w = m.result;
  return {
    ...w.result,
    machineCpu: m.cpu,
    peakRssMiB: round(Math.max(rss0, process.memoryUsage().rss) / MiB),
    note: 'runs in the benchmark process (RSS: that process)',
  };
}

const strip = <T extends Figure>(f: T): Figure => {
  const { fileId: _f, sha256: _s, ...rest } = f as T & { fileId?: string; sha256?: string };
  return rest;
};

export async function throughput(b: Bench, o: ThroughputOptions) {
  const C = o.concurrency;
  const file = path.join(b.dir, 'big.bin');
  const out = path.join(b.dir, 'out.bin');
  log(`writing a ${o.size / MiB} MiB file`);
  const sha = await makeFile(file, o.size);
  const measure = async <T extends Figure>(name: string, fn: () => Promise<T>) => {
    log(`${name}…`);
    const r = await median(o.runs, fn);
    log(`${name}: ${r.MBps} MB/s (${r.seconds} s${r.phases ? ` ${JSON.stringify(r.phases)}` : ''})`);
    return r;
  };
  const checkOut = async (what: string) => {
    if ((await sha256File(out)) !== sha) throw new Error(`${what}: the downloaded bytes differ`);
    await fs.rm(out, { force: true });
  };

  // Objects are deleted as soon as they are not needed: the one-OSD store is small.
  const sdkDirect = await measure('upload: SDK direct', () => sdkUpload(b, file, o.size, C, 'fixed'));
  if (sdkDirect.sha256 !== sha) throw new Error('the SDK declared another SHA-256');
  const baseKey = b.key('lib-storage');
  const kept = [sdkDirect.fileId, baseKey];
  await b.flush(kept);
  const dropAfter = async <T>(fn: () => Promise<T>) => {
    const r = await fn();
    await b.flush(kept);
    return r;
  };
  const sdkAdaptive = await measure('upload: SDK direct, adaptive', () =>
    dropAfter(() => sdkUpload(b, file, o.size, C, 'adaptive')),
  );
  // The same upload through a coordinator that checks the whole-file SHA-256 from the parts'
  // ETags instead of reading the object back (WHOLE_FILE_VERIFY=parts).
  const partsCoordinator = await startCoordinator({ env: { ...BENCH_COORDINATOR_ENV, WHOLE_FILE_VERIFY: 'parts' } });
  const sdkPartsVerify = await measure('upload: SDK direct, WHOLE_FILE_VERIFY=parts', () =>
    dropAfter(() => sdkUpload(b, file, o.size, C, 'fixed', partsCoordinator)),
  ).finally(() => partsCoordinator.stop());
  const sdkRelay = await measure('upload: SDK relay', () => dropAfter(() => sdkUpload(b, file, o.size, C, 'relay')));
  const libStorage = await measure('upload: lib-storage', () =>
    inProcess(b, () => libStorageUpload(b, file, o.size, C, baseKey)),
  );
  const ceilingKey = b.key('ceiling');
  const ceiling = await measure('upload: ceiling', () =>
    inProcess(b, () => ceilingUpload(b, file, o.size, C, ceilingKey)),
  );
  await b.flush(kept);

  const dlSdk = await measure('download: SDK', async () => {
    const r = await sdkDownload(b, sdkDirect.fileId, o.size, C, out);
    await checkOut('SDK download');
    return r;
  });
  const serverStream = await measure('download: streaming endpoint', async () => {
    const w = await watch(b.coordinator.pid, () => serverStreamDownload(b, sdkDirect.fileId, o.size, out));
    await checkOut('streaming endpoint');
    return { ...w.result, coordinator: { peakRssMiB: w.peakRssMiB, cpuPercent: w.cpuPercent } };
  });
  const getObject = await measure('download: one GetObject', async () => {
    const r = await inProcess(b, () => getObjectDownload(b, baseKey, o.size, out));
    await checkOut('GetObject');
    return r;
  });
  const dlCeiling = await measure('download: ceiling', async () => {
    const r = await inProcess(b, () => ceilingDownload(b, baseKey, o.size, C, out));
    await checkOut('ceiling download');
    return r;
  });

  const ratios = {
    sdkDirectVsLibStorage: ratio(sdkDirect.MBps, libStorage.MBps),
    sdkDirectVsCeiling: ratio(sdkDirect.MBps, ceiling.MBps),
    sdkDirectPartsVerifyVsLibStorage: ratio(sdkPartsVerify.MBps, libStorage.MBps),
    sdkDirectPartsVerifyVsCeiling: ratio(sdkPartsVerify.MBps, ceiling.MBps),
    sdkRelayVsDirect: ratio(sdkRelay.MBps, sdkDirect.MBps),
    sdkDownloadVsGetObject: ratio(dlSdk.MBps, getObject.MBps),
    sdkDownloadVsCeiling: ratio(dlSdk.MBps, dlCeiling.MBps),
    /** The SDK's data phase alone (presign + PUT + report), against the ceiling's whole run. */
    sdkDirectTransferPhaseVsCeiling: ratio(o.size / 1e6 / (sdkDirect.phases?.transferring ?? 1e9), ceiling.MBps),
  };

  await b.flush();

  // When the SDK misses a target, profile one more upload (every thread) to show where the time goes.
  let profile: (ProfileSummary & { seconds: number; phases: Record<string, number> }) | undefined;
  if (o.profileOnMiss && (ratios.sdkDirectVsLibStorage < 0.95 || ratios.sdkDirectVsCeiling < 0.85)) {
    log('profiling one SDK direct upload (node --cpu-prof)');
    const profDir = path.join(b.dir, 'profile');
    const args = ['upload', file, '--concurrency', String(C), '--chunk-size', String(b.part), '--fixed'];
    const r = await runSdk<SdkUploadOut>(b.coordinator, args, ['--cpu-prof', '--cpu-prof-dir', profDir]);
    b.uploaded(r.result.fileId);
    await b.flush();
    profile = { ...(await summariseProfiles(profDir)), seconds: round(r.result.seconds, 2), phases: r.result.phases };
    await fs.rm(profDir, { recursive: true, force: true });
  }

  // Throughput against concurrency, on a smaller file.
  const sweepFile = path.join(b.dir, 'sweep.bin');
  await makeFile(sweepFile, o.sweepSize);
  const series: Record<string, Figure[]> = {
    'upload SDK direct': [],
    'upload lib-storage': [],
    'upload ceiling': [],
    'download SDK': [],
    'download ceiling': [],
  };
  for (const c of o.sweep) {
    log(`sweep: concurrency ${c}`);
    const up = await sdkUpload(b, sweepFile, o.sweepSize, c, 'fixed');
    series['upload SDK direct']!.push(strip(up));
    const k = b.key(`sweep-${c}`);
    series['upload lib-storage']!.push(await libStorageUpload(b, sweepFile, o.sweepSize, c, k));
    series['upload ceiling']!.push(await ceilingUpload(b, sweepFile, o.sweepSize, c, b.key(`sweep-ceiling-${c}`)));
    series['download SDK']!.push(await sdkDownload(b, up.fileId, o.sweepSize, c, out));
    await fs.rm(out, { force: true });
    series['download ceiling']!.push(await ceilingDownload(b, k, o.sweepSize, c, out));
    await fs.rm(out, { force: true });
    await b.flush();
  }
  await fs.rm(sweepFile, { force: true });
  await fs.rm(file, { force: true });

  return {
    sizeMiB: o.size / MiB,
    concurrency: C,
    runs: o.runs,
    upload: {
      sdkDirect: strip(sdkDirect),
      sdkDirectAdaptive: strip(sdkAdaptive),
      sdkDirectPartsVerify: strip(sdkPartsVerify),
      sdkRelay: strip(sdkRelay),
      libStorage,
      ceiling,
    },
    download: { sdk: dlSdk, serverStream, getObject, ceiling: dlCeiling },
    ratios,
    ...(profile ? { sdkUploadProfile: profile } : {}),
    sweep: { sizeMiB: o.sweepSize / MiB, levels: o.sweep, series },
  };
}

export type ThroughputResults = Awaited<ReturnType<typeof throughput>>;
