/** bench/results/latest.md: every figure of a run as Markdown tables. */
import type { Figure } from '../lib/measure.ts';
import type { Results } from './types.ts';

const table = (head: string[], rows: Array<Array<string | number | undefined | null>>) =>
  [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map((c) => (c === undefined || c === null ? '—' : String(c))).join(' | ')} |`),
  ].join('\n');

const phases = (f: Figure) =>
  f.phases
    ? Object.entries(f.phases)
        .map(([k, v]) => `${k} ${v}`)
        .join(' · ')
    : undefined;
const machine = (f: Figure) => {
  const m = f.machineCpu;
  return m
    ? `${m.total} (${m.s3} · ${m.coordinator} · ${m.postgres} · ${m.clientAndRest}), ${Math.round(m.busy * 100)}% busy`
    : '—';
};
/** One direction's contenders, each against the baseline and the ceiling. */
function contenders(
  what: string,
  baselineName: string,
  baseline: Figure,
  ceiling: Figure,
  rows: Array<[string, Figure | undefined]>,
): string {
  return table(
    [
      what,
      'MB/s',
      's',
      'phases (s)',
      `vs ${baselineName}`,
      'vs ceiling',
      'client peak RSS (MiB)',
      'coordinator RSS · CPU',
      'machine CPU core-s (S3 · coordinator · PG · client+rest)',
    ],
    rows
      .filter((row): row is [string, Figure] => row[1] !== undefined)
      .map(([n, f]) => [
        n,
        f.MBps,
        f.seconds,
        phases(f),
        x(f.MBps, baseline.MBps),
        x(f.MBps, ceiling.MBps),
        f.peakRssMiB,
        co(f),
        machine(f),
      ]),
  );
}

const co = (f: Figure) =>
  f.coordinator?.peakRssMiB !== undefined
    ? `${f.coordinator.peakRssMiB} MiB · ${f.coordinator.cpuPercent}%`
    : undefined;
const x = (a: number, b: number) => (b > 0 ? `${Math.round((a / b) * 100) / 100}×` : '—');

export function markdown(r: Results): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(
    `### Benchmark results (${r.mode}, ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    `Command \`${r.command}\` (${Math.round(r.seconds / 6) / 10} min) on ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}, ${m.platform}.`,
    `S3: ${r.store}. Coordinator: one process on the same machine, PostgreSQL at ${r.stack.database}, ` +
      `settings ${Object.entries(r.coordinatorSettings)
        .map(([k, v]) => `${k}=${v}`)
        .join(
          ', ',
        )} (limits raised so that figures show capacity, not policy; the "100 concurrent uploads" run uses the defaults).`,
    `MB/s = 10^6 bytes/s. Everything shares the machine's ${m.cores} cores: the SDK, the coordinator, PostgreSQL and Ceph RGW.`,
    '',
  );
  if (Object.keys(r.errors).length) {
    out.push('**Scenarios that failed in this run:**', '');
    for (const [k, v] of Object.entries(r.errors)) out.push(`- ${k}: ${v}`);
    out.push('');
  }
  out.push(
    '#### Targets',
    '',
    table(
      ['target', 'measured', 'met', 'why / where the time goes'],
      Object.values(r.targets).map((t) => [
        t.target,
        t.value,
        t.met === null ? 'n/a' : t.met ? 'yes' : '**no**',
        t.note,
      ]),
    ),
    '',
  );

  const t = r.throughput;
  if (t) {
    const u = t.upload;
    const d = t.download;
    out.push(
      `#### 1–2. Throughput: one ${t.sizeMiB} MiB file, ${r.partSizeMiB} MiB parts, concurrency ${t.concurrency} for every contender (median of ${t.runs})`,
      '',
      contenders('upload', 'lib-storage', u.libStorage, u.ceiling, [
        ['SDK direct (presigned PUTs)', u.sdkDirect],
        ['SDK direct, adaptive pool', u.sdkDirectAdaptive],
        ['SDK direct, coordinator with `WHOLE_FILE_VERIFY=parts` (no read-back)', u.sdkDirectPartsVerify],
        ['SDK relay (through the coordinator)', u.sdkRelay],
        ['`@aws-sdk/lib-storage` `Upload`', u.libStorage],
        ['ceiling: presigned PUTs, no coordinator, no hashing', u.ceiling],
      ]),
      '',
      contenders('download', 'one GetObject', d.getObject, d.ceiling, [
        ['SDK parallel ranged GETs (+ SHA-256 check)', d.sdk],
        ['coordinator streaming endpoint', d.serverStream],
        ['one `GetObject` stream', d.getObject],
        ['ceiling: parallel ranged GETs, no coordinator', d.ceiling],
      ]),
      '',
      'SDK figures: measured inside a child process running `bench/lib/sdk-transfer.ts` (its peak RSS is VmHWM); baselines run in the benchmark process. ' +
        'Machine CPU: the core-seconds the whole machine used during the run (/proc/stat), split into the S3 server’s daemons, the coordinator, ' +
        'PostgreSQL and the rest (the client that moved the bytes, the benchmark process, anything else).',
      '',
    );
    if (t.sdkUploadProfile) {
      const p = t.sdkUploadProfile;
      out.push(
        `SDK upload profile (\`node --cpu-prof\`, ${p.threads} thread(s), ${p.seconds} s, phases ${JSON.stringify(p.phases)}): self time by category — ` +
          Object.entries(p.categories)
            .map(([k, v]) => `${k} ${v} s`)
            .join(', ') +
          '. Top functions: ' +
          p.top
            .slice(0, 6)
            .map((f) => `\`${f.fn}\` ${f.seconds} s`)
            .join(', ') +
          '.',
        '',
      );
    }
  }

  const mf = r.manyFiles;
  if (mf)
    out.push(
      `#### 1b. Many files: ${mf.files} × ${mf.fileSizeMiB} MiB, ${mf.filesAtOnce} files × ${mf.partsPerFileInFlight} parts in flight`,
      '',
      table(
        ['contender', 'MB/s', 'files/s', 'vs lib-storage', 'vs ceiling'],
        [
          [
            'SDK direct',
            mf.sdk.MBps,
            mf.filesPerSecond.sdk,
            x(mf.sdk.MBps, mf.libStorage.MBps),
            x(mf.sdk.MBps, mf.ceiling.MBps),
          ],
          [
            'lib-storage',
            mf.libStorage.MBps,
            mf.filesPerSecond.libStorage,
            '1×',
            x(mf.libStorage.MBps, mf.ceiling.MBps),
          ],
          ['ceiling', mf.ceiling.MBps, mf.filesPerSecond.ceiling, x(mf.ceiling.MBps, mf.libStorage.MBps), '1×'],
        ],
      ),
      '',
    );

  const cl = r.chunkLatency;
  if (cl) {
    const row = (n: string, l: { avgMs: number; p95Ms: number; p99Ms: number; n: number }) => [
      n,
      l.n,
      l.avgMs,
      l.p95Ms,
      l.p99Ms,
    ];
    out.push(
      `#### 3–4. Chunk latency and retries: SDK direct upload of ${cl.sizeMiB} MiB, concurrency ${cl.concurrency}`,
      '',
      table(
        ['step (no faults)', 'calls', 'avg ms', 'p95 ms', 'p99 ms'],
        [
          row('presign (POST …/chunks/presign)', cl.noFaults.latency.presign),
          row('PUT to S3', cl.noFaults.latency.put),
          row('report (PATCH …/chunks/{i})', cl.noFaults.latency.report),
        ],
      ),
      '',
      table(
        ['run', 'MB/s', 'chunks', 'retries', 'retry rate', 'PUT attempts / chunk', 'faults injected'],
        [
          [
            'no faults',
            cl.noFaults.MBps,
            cl.noFaults.chunks,
            cl.noFaults.retries,
            cl.noFaults.retryRate,
            cl.noFaults.putAttemptsPerChunk,
            0,
          ],
          [
            'with faults',
            cl.withFaults.MBps,
            cl.withFaults.chunks,
            cl.withFaults.retries,
            cl.withFaults.retryRate,
            cl.withFaults.putAttemptsPerChunk,
            `${cl.withFaults.injected.error} × 503, ${cl.withFaults.injected.reset} resets (${cl.withFaults.injected.config})`,
          ],
        ],
      ),
      '',
    );
  }

  const cu = r.concurrentUploads;
  if (cu)
    out.push(
      `#### 100 concurrent uploads (${cu.coordinatorSettings})`,
      '',
      `${cu.uploads} SDK uploads of ${cu.fileSizeMiB} MiB at once: **${cu.completed} completed, ${cu.failed} failed**, ${cu.retries} retries ` +
        `(429s by limit: ${JSON.stringify(cu.throttledByLimit)}), ${cu.MBps} MB/s in all, ${cu.seconds} s; SDK peak RSS ${cu.sdkPeakRssMiB} MiB, ` +
        `coordinator ${cu.coordinator.peakRssMiB} MiB, CPU ${cu.coordinator.cpuPercent}%.`,
      '',
    );

  const s = r.saturation;
  if (s)
    out.push(
      `#### 5. Saturation ramp (${s.model}); knee: ${s.criterion}`,
      '',
      table(
        [
          'uploads',
          'presign/s',
          'report/s',
          'presign p50 / p95 / p99 ms',
          'report p99 ms',
          '429 share',
          'errors',
          'coordinator CPU %',
          'coordinator RSS MiB',
        ],
        s.levels.map((l) => [
          l.uploads,
          l.presignPerSecond,
          l.reportPerSecond,
          `${l.presign.p50Ms} / ${l.presign.p95Ms} / ${l.presign.p99Ms}`,
          l.report.p99Ms,
          `${Math.round(l.throttledShare * 10000) / 100}%`,
          l.errors,
          l.coordinator.cpuPercent,
          l.coordinator.peakRssMiB,
        ]),
      ),
      '',
      `Knee: **${s.knee ?? 'none'}** — ${s.kneeNote}.`,
      '',
    );

  const cp = r.controlPlane;
  if (cp)
    out.push(
      `#### 6. Control-plane capacity (${cp.tool}; closed loop, one upload per connection)`,
      '',
      table(
        [
          'endpoint',
          'connections',
          'per second',
          'p50 ms',
          'p95 ms',
          'p99 ms',
          'non-2xx',
          'errors',
          'coordinator CPU %',
        ],
        cp.runs.map((c) => [
          c.endpoint,
          c.connections,
          c.perSecond,
          c.p50Ms,
          c.p95Ms,
          c.p99Ms,
          c.non2xx,
          c.errors,
          c.coordinator.cpuPercent,
        ]),
      ),
      '',
    );

  const w = r.workerScaling;
  if (w)
    out.push(
      `#### 7. Worker pool under rising and falling relay load (${w.model})`,
      '',
      `Load profile ${w.profile.map((p) => `${p.clients} clients × ${p.seconds} s`).join(' → ')}: workers peaked at **${w.peakWorkers}** ` +
        `(queue depth ${w.peakQueueDepth}), ${w.finalWorkers} at the end; ${w.relayFailures} failed relay calls, ${w.relayThrottled} 429s. ` +
        'Time series (every 4th sample; chart `latest-workers.svg`):',
      '',
      table(
        ['t (s)', 'clients', 'workers', 'busy', 'queue depth', 'relay MB/s'],
        w.samples
          .filter((_, i) => i % 4 === 0)
          .map((p) => [p.t, p.clients, p.workers, p.busy, p.queueDepth, p.relayMBps]),
      ),
      '',
    );

  const bf = r.bigFile;
  if (bf)
    out.push(
      `#### 8. ${bf.sizeGiB} GiB file (concurrency ${bf.concurrency}), checksums verified: ${bf.verified ? 'yes' : '**no**'}`,
      '',
      table(
        ['', 'MB/s', 's', 'phases (s)', 'SDK peak RSS MiB', 'coordinator RSS · CPU'],
        [
          ['upload', bf.upload.MBps, bf.upload.seconds, phases(bf.upload), bf.upload.peakRssMiB, co(bf.upload)],
          [
            'download',
            bf.download.MBps,
            bf.download.seconds,
            phases(bf.download),
            bf.download.peakRssMiB,
            co(bf.download),
          ],
        ],
      ),
      '',
    );

  if (t) {
    const keys = Object.keys(t.sweep.series);
    out.push(
      `#### Throughput against concurrency (${t.sweep.sizeMiB} MiB file, MB/s; chart \`latest.svg\`)`,
      '',
      table(
        ['concurrency', ...keys],
        t.sweep.levels.map((c, i) => [c, ...keys.map((k) => t.sweep.series[k]![i]?.MBps)]),
      ),
      '',
    );
  }
  if (r.sdkWorkers !== undefined)
    out.push(
      '#### SDK hashing workers (bench/sdk-workers.ts)',
      '',
      '```json',
      JSON.stringify(r.sdkWorkers, null, 2),
      '```',
      '',
    );
  return out.join('\n');
}

export const README_START = '<!-- bench:start (written by `npm run bench`; edits here are overwritten) -->';
export const README_END = '<!-- bench:end -->';

/**
 * The README's Performance section: the run's heading, targets and the throughput tables of
 * `markdown(r)`, with a pointer to the whole report and the chart.
 */
export function readmeSection(r: Results, dir: string): string {
  const full = markdown(r);
  const start = full.indexOf('#### 1–2.');
  const next = start < 0 ? -1 : full.indexOf('\n#### ', start + 1);
  const head = start < 0 ? full : full.slice(0, next < 0 ? undefined : next);
  return [
    README_START,
    head.trimEnd(),
    '',
    `Throughput against concurrency: [${dir}/latest.svg](${dir}/latest.svg). Every other figure (chunk latency, ` +
      `retry rate, many files, 100 concurrent uploads, the saturation knee, the control plane, worker scaling, ` +
      `SDK hashing threads${r.mode === 'full' ? ', the 5 GiB file' : ''}) is in [${dir}/latest.md](${dir}/latest.md).`,
    README_END,
  ].join('\n');
}

/** `readme` with its Performance section replaced by `section` (appended when it has none). */
export function replaceReadmeSection(readme: string, section: string): string {
  const a = readme.indexOf(README_START);
  const b = readme.indexOf(README_END);
  if (a >= 0 && b > a) return readme.slice(0, a) + section + readme.slice(b + README_END.length);
  return `${readme.trimEnd()}\n\n## Performance\n\n${section}\n`;
}
