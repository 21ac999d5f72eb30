/** The issue's targets, checked against one run's results; a missed one says why. */
import type { Figure } from './lib/measure.ts';
import type { Results, Target } from './report/types.ts';

const t = (target: string, value: number | null, met: boolean | null, note?: string): Target => ({
  target,
  value,
  met,
  ...(note ? { note } : {}),
});

/** "8.4 (busy 88%: S3 3.1, coordinator 1.8, PostgreSQL 0.3, client and rest 3.2)" */
export function cpuText(f: Figure): string | undefined {
  const m = f.machineCpu;
  if (!m) return undefined;
  return `${m.total} (busy ${Math.round(m.busy * 100)}%: S3 ${m.s3}, coordinator ${m.coordinator}, PostgreSQL ${m.postgres}, client and rest ${m.clientAndRest})`;
}

/** Where an SDK upload's time went: its phases, the profile's categories. */
function uploadWhy(r: Results): string | undefined {
  const tp = r.throughput;
  if (!tp) return undefined;
  const f = tp.upload.sdkDirect;
  const ph = f.phases ?? {};
  const parts = [
    `SDK ${f.seconds} s = hashing ${ph.hashing ?? '?'} s (whole-file SHA-256 + per-chunk MD5/SHA-256, before init: the checksum is declared at init)`,
    `+ transfer ${ph.transferring ?? '?'} s (presign/PUT/report: ${tp.ratios.sdkDirectTransferPhaseVsCeiling}× the ceiling's rate)`,
    `+ completing ${ph.completing ?? '?'} s (the coordinator reads the object back to verify that SHA-256)`,
    `vs lib-storage ${tp.upload.libStorage.seconds} s, which hashes nothing end to end.`,
  ];
  const sdkCpu = cpuText(f);
  const libCpu = cpuText(tp.upload.libStorage);
  if (sdkCpu && libCpu)
    parts.push(
      `The machine's CPU (core-seconds) — SDK run: ${sdkCpu}; lib-storage run: ${libCpu}: with every process on the ` +
        `same 2 cores, the integrity work (MD5 + SHA-256 per chunk, the whole-file SHA-256, the coordinator's read-back) ` +
        `takes CPU from the S3 server itself.`,
    );
  const pv = tp.upload.sdkDirectPartsVerify;
  if (pv)
    parts.push(
      `With WHOLE_FILE_VERIFY=parts (no read-back) the same upload took ${pv.seconds} s: ` +
        `${tp.ratios.sdkDirectPartsVerifyVsLibStorage}× lib-storage, ${tp.ratios.sdkDirectPartsVerifyVsCeiling}× the ceiling.`,
    );
  const p = tp.sdkUploadProfile;
  if (p)
    parts.push(
      `profile: ${Object.entries(p.categories)
        .slice(0, 4)
        .map(([k, v]) => `${k} ${v} s`)
        .join(', ')}`,
    );
  return parts.join(' ');
}

export function targets(r: Results): Record<string, Target> {
  const out: Record<string, Target> = {};
  const tp = r.throughput;
  if (tp) {
    const a = tp.ratios.sdkDirectVsLibStorage;
    const b = tp.ratios.sdkDirectVsCeiling;
    const d = tp.ratios.sdkDownloadVsGetObject;
    out.sdkVsLibStorage = t('SDK direct upload ≥ 0.95× lib-storage', a, a >= 0.95, a < 0.95 ? uploadWhy(r) : undefined);
    out.sdkVsCeiling = t('SDK direct upload ≥ 0.85× ceiling', b, b >= 0.85, b < 0.85 ? uploadWhy(r) : undefined);
    const dl = tp.download.sdk;
    out.sdkDownloadVsGetObject = t(
      'SDK download ≥ 1.0× one GetObject stream',
      d,
      d >= 1,
      d < 1
        ? `SDK ${dl.seconds} s = ${Object.entries(dl.phases ?? {})
            .map(([k, v]) => `${k} ${v} s`)
            .join(' + ')} (verifying: the tail of the whole-file SHA-256, read back from the file)`
        : undefined,
    );
  }
  const cu = r.concurrentUploads;
  if (cu)
    out.failedAt100 = t(
      '0 failed uploads at 100 concurrent uploads',
      cu.failed,
      cu.failed === 0,
      cu.failed ? `first failures: ${cu.failures.join('; ')}` : undefined,
    );
  const s = r.saturation;
  const l = s?.levels.find((x) => x.uploads === 1000);
  if (l) {
    const ok = l.presign.p99Ms < 50;
    out.presignP99At1000 = t(
      'p99 presign latency < 50 ms at 1,000 concurrent uploads (ramp model)',
      l.presign.p99Ms,
      ok,
      ok
        ? undefined
        : `at 1,000 uploads (${l.presignPerSecond} presign/s + ${l.reportPerSecond} report/s) the coordinator used ${l.coordinator.cpuPercent}% of one core, ` +
            `on 2 cores shared with PostgreSQL, Ceph RGW and the load generator; p50 ${l.presign.p50Ms} ms, p95 ${l.presign.p95Ms} ms`,
    );
  }
  return out;
}
