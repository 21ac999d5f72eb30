/**
 * `npm run bench [-- --quick]` (issue 6): throughput of Conveyor next to its baselines, measured in
 * one run on the same machine and the same S3.
 *
 * Upload of one large file:   SDK direct (presigned PUTs) · SDK relay (through the coordinator) ·
 *                             `@aws-sdk/lib-storage` `Upload` (same part size and concurrency) ·
 *                             ceiling: parallel presigned PUTs, no coordinator, no hashing.
 * Download of the same bytes: SDK parallel ranged GETs · the coordinator's streaming endpoint ·
 *                             one `GetObject` stream · ceiling: parallel ranged GETs, no coordinator.
 * Then a sweep of throughput against concurrency (SDK, lib-storage and the ceiling), drawn as an SVG.
 *
 * Stack: the S3_* environment when set (else `bash infra/ceph-rgw.sh start`), DATABASE_URL or the
 * machine's PostgreSQL, and a coordinator started here (or CONVEYOR_URL + CONVEYOR_API_KEY to reuse
 * one). Writes bench/results/<date>.json, latest.json, latest.md and latest.svg (+ <date>.svg).
 *
 *   npm run bench -- --quick            512 MiB, concurrency 8, 8 MiB parts, sweep 1–16 on 256 MiB
 *   npm run bench                       2 GiB, the same, 3 runs per figure (median), sweep on 1 GiB
 *   options: --size-mib N --concurrency C --part-mib S --runs R --sweep 1,2,4,8,16 --sweep-size-mib N
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ConveyorClient } from '../client-sdk/index.ts';
import {
  type Coordinator,
  deleteUploadedObjects,
  MiB,
  machine,
  peakRss,
  startCoordinator,
  storeDescription,
} from './lib/coordinator.ts';
import { makeFile, sha256File } from './lib/files.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'size-mib': { type: 'string' },
    concurrency: { type: 'string' },
    'part-mib': { type: 'string' },
    runs: { type: 'string' },
    sweep: { type: 'string' },
    'sweep-size-mib': { type: 'string' },
    out: { type: 'string', default: 'bench/results' },
  },
});
const QUICK = values.quick;
const SIZE = Number(values['size-mib'] ?? (QUICK ? 512 : 2048)) * MiB;
const C = Number(values.concurrency ?? 8);
const PART = Number(values['part-mib'] ?? 8) * MiB;
const RUNS = Number(values.runs ?? (QUICK ? 1 : 3));
const SWEEP = (values.sweep ?? '1,2,4,8,16').split(',').map(Number);
const SWEEP_SIZE = Number(values['sweep-size-mib'] ?? (QUICK ? 256 : 1024)) * MiB;
const OUT_DIR = values.out;

const MB = 1e6;
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);

// ---------------------------------------------------------------- the stack

async function ensureS3(): Promise<'reused' | 'started'> {
  const reachable = async () =>
    !!process.env.S3_ENDPOINT &&
    (await fetch(process.env.S3_ENDPOINT)
      .then(() => true)
      .catch(() => false));
  if (process.env.S3_BUCKET && (!process.env.S3_ENDPOINT || (await reachable()))) return 'reused';
  log('starting Ceph RGW (bash infra/ceph-rgw.sh start)');
  const out = execFileSync('bash', ['infra/ceph-rgw.sh', 'start'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  for (const m of out.matchAll(/^export (\w+)=(.*)$/gm)) process.env[m[1]!] = m[2]!.replace(/^['"]|['"]$/g, '');
  if (!process.env.S3_BUCKET) throw new Error('infra/ceph-rgw.sh start printed no S3 environment');
  return 'started';
}

function s3Client(): S3Client {
  return new S3Client({
    region: process.env.S3_REGION ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(process.env.S3_ENDPOINT ? { endpoint: process.env.S3_ENDPOINT } : {}),
    forcePathStyle: process.env.S3_FORCE_PATH_STYLE === 'true',
  });
}

// ---------------------------------------------------------------- helpers

/** Runs `fn` `runs` times and keeps the run with the median time. */
async function median<T extends { seconds: number }>(
  runs: number,
  fn: () => Promise<T>,
): Promise<T & { runs: number[] }> {
  const all: T[] = [];
  for (let i = 0; i < runs; i++) all.push(await fn());
  const sorted = [...all].sort((a, b) => a.seconds - b.seconds);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, runs: all.map((r) => round(r.seconds, 2)) };
}

interface Figure {
  seconds: number;
  MBps: number;
  /** Time in the data phase only (after the SDK's hashing pass; before its final read-back check). */
  transferSeconds?: number;
  transferMBps?: number;
  note?: string;
  /** Seconds of every run, when the figure is a median. */
  runs?: number[];
}

const figure = (bytes: number, seconds: number, extra: Partial<Figure> = {}): Figure => ({
  seconds: round(seconds, 2),
  MBps: round(bytes / MB / seconds),
  ...extra,
});

/** Parallel workers over `n` items, `c` at a time. */
async function parallel(n: number, c: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(c, n) }, async () => {
      while (next < n) await work(next++);
    }),
  );
}

function httpRequest(
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

// ---------------------------------------------------------------- the contenders

interface Ctx {
  s3: S3Client;
  bucket: string;
  coordinator: { base: string; apiKey: string };
  file: string;
  size: number;
  dir: string;
}

/** Files the SDK uploaded (the coordinator stores them at `uploads/<id>`): deleted at the end. */
const sdkUploads: string[] = [];

async function sdkUpload(ctx: Ctx, c: number, transport: 'direct' | 'relay', adaptive = false) {
  const client = new ConveyorClient({
    baseUrl: ctx.coordinator.base,
    apiKey: ctx.coordinator.apiKey,
    resumeStore: false,
  });
  try {
    const t0 = performance.now();
    let tTransfer: number | undefined;
    const t = client.upload(ctx.file, {
      transport,
      resume: false,
      chunkSize: PART,
      concurrency: adaptive ? { initial: c } : { initial: c, min: c, max: c, adaptive: false },
    });
    t.on('progress', (p) => {
      if (p.phase === 'transferring' && tTransfer === undefined) tTransfer = performance.now();
    });
    const r = await t;
    sdkUploads.push(r.fileId);
    const seconds = (performance.now() - t0) / 1000;
    const transferSeconds = (performance.now() - (tTransfer ?? t0)) / 1000;
    return {
      ...figure(ctx.size, seconds, {
        transferSeconds: round(transferSeconds, 2),
        transferMBps: round(ctx.size / MB / transferSeconds),
      }),
      fileId: r.fileId,
      sha256: r.sha256,
      retries: r.retries,
      finalConcurrency: r.concurrency.current,
    };
  } finally {
    client.close();
  }
}

async function libStorageUpload(ctx: Ctx, c: number, key: string) {
  const t0 = performance.now();
  const fh = await fs.open(ctx.file);
  try {
    const up = new Upload({
      client: ctx.s3,
      params: { Bucket: ctx.bucket, Key: key, Body: fh.createReadStream({ highWaterMark: 1 * MiB }) },
      partSize: PART,
      queueSize: c,
      leavePartsOnError: false,
    });
    await up.done();
  } finally {
    await fh.close().catch(() => {});
  }
  return figure(ctx.size, (performance.now() - t0) / 1000);
}

/** Presigned UploadPart PUTs from positional reads into one buffer per worker: no coordinator, no hashing. */
async function ceilingUpload(ctx: Ctx, c: number, key: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: c + 2 });
  const t0 = performance.now();
  const { UploadId } = await ctx.s3.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: key }));
  const parts = Math.ceil(ctx.size / PART);
  const etags: string[] = [];
  const fh = await fs.open(ctx.file);
  const buffers = Array.from({ length: Math.min(c, parts) }, () => Buffer.allocUnsafe(PART));
  let free = [...buffers];
  try {
    await parallel(parts, c, async (i) => {
      const buf = free.pop()!;
      try {
        const n = Math.min(PART, ctx.size - i * PART);
        await fh.read(buf, 0, n, i * PART);
        const url = await getSignedUrl(
          ctx.s3,
          new UploadPartCommand({ Bucket: ctx.bucket, Key: key, UploadId, PartNumber: i + 1 }),
          { expiresIn: 3600 },
        );
        const res = await httpRequest(agent, url, 'PUT', { 'content-length': String(n) }, buf.subarray(0, n));
        if (res.status !== 200) throw new Error(`ceiling PUT part ${i + 1}: ${res.status} ${res.text}`);
        etags[i] = String(res.headers.etag);
      } finally {
        free.push(buf);
      }
    });
    await ctx.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: ctx.bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
  } catch (err) {
    await ctx.s3.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId })).catch(() => {});
    throw err;
  } finally {
    free = [];
    await fh.close();
    agent.destroy();
  }
  return figure(ctx.size, (performance.now() - t0) / 1000);
}

async function sdkDownload(ctx: Ctx, c: number, fileId: string, out: string) {
  const client = new ConveyorClient({
    baseUrl: ctx.coordinator.base,
    apiKey: ctx.coordinator.apiKey,
    resumeStore: false,
  });
  try {
    const t0 = performance.now();
    let tVerify: number | undefined;
    const t = client.download(fileId, out, {
      resume: false,
      concurrency: { initial: c, min: c, max: c, adaptive: false },
    });
    t.on('progress', (p) => {
      if (p.phase === 'verifying' && tVerify === undefined) tVerify = performance.now();
    });
    const r = await t;
    const end = performance.now();
    const transferSeconds = ((tVerify ?? end) - t0) / 1000;
    return {
      ...figure(ctx.size, (end - t0) / 1000, {
        transferSeconds: round(transferSeconds, 2),
        transferMBps: round(ctx.size / MB / transferSeconds),
        note: 'includes the final whole-file SHA-256 (read back from disk)',
      }),
      sha256: r.sha256,
      verified: r.verified,
    };
  } finally {
    client.close();
  }
}

async function serverStreamDownload(ctx: Ctx, fileId: string, out: string) {
  const t0 = performance.now();
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http
      .get(
        `${ctx.coordinator.base}/v1/files/${fileId}/content`,
        { headers: { authorization: `Bearer ${ctx.coordinator.apiKey}` } },
        resolve,
      )
      .on('error', reject);
  });
  if (res.statusCode !== 200) throw new Error(`streaming endpoint: ${res.statusCode}`);
  await pipeline(res, (await fs.open(out, 'w')).createWriteStream());
  return figure(ctx.size, (performance.now() - t0) / 1000);
}

async function getObjectDownload(ctx: Ctx, key: string, out: string) {
  const t0 = performance.now();
  const r = await ctx.s3.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }));
  await pipeline(r.Body as NodeJS.ReadableStream, (await fs.open(out, 'w')).createWriteStream());
  return figure(ctx.size, (performance.now() - t0) / 1000);
}

/** Presigned ranged GETs, one buffer per worker, positional writes: no coordinator, no hashing. */
async function ceilingDownload(ctx: Ctx, c: number, key: string, out: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: c + 2 });
  const t0 = performance.now();
  const url = await getSignedUrl(ctx.s3, new GetObjectCommand({ Bucket: ctx.bucket, Key: key }), { expiresIn: 3600 });
  const parts = Math.ceil(ctx.size / PART);
  const fh = await fs.open(out, 'w');
  const free = Array.from({ length: Math.min(c, parts) }, () => Buffer.allocUnsafe(PART));
  try {
    await fh.truncate(ctx.size);
    await parallel(parts, c, async (i) => {
      const buf = free.pop()!;
      try {
        const start = i * PART;
        const n = Math.min(PART, ctx.size - start);
        const res = await httpRequest(agent, url, 'GET', { range: `bytes=${start}-${start + n - 1}` }, undefined, buf);
        if (res.status !== 206 || res.length !== n)
          throw new Error(`ceiling GET part ${i}: ${res.status} ${res.length}`);
        await fh.write(buf, 0, n, start);
      } finally {
        free.push(buf);
      }
    });
  } finally {
    await fh.close();
    agent.destroy();
  }
  return figure(ctx.size, (performance.now() - t0) / 1000);
}

// ---------------------------------------------------------------- output

const ratio = (a: number, b: number) => round(a / b, 2);

function markdown(r: Results): string {
  const u = r.upload;
  const d = r.download;
  const row = (name: string, f: Figure, base: string) =>
    `| ${name} | ${f.MBps} | ${f.seconds} | ${f.transferMBps ?? '—'} | ${base} |`;
  const lines = [
    `### Throughput, measured (${r.mode})`,
    '',
    `\`${r.command}\` — ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, ${r.machine.node}; store: ${r.store}.`,
    `One ${r.sizeMiB} MiB file, ${r.partSizeMiB} MiB parts, concurrency ${r.concurrency} (fixed for every contender);`,
    `MB/s = 10^6 bytes per second, end to end (the SDK's hashing pass and final check included); median of ${r.runs} run(s).`,
    '',
    '| upload | MB/s | s | MB/s in the data phase | vs lib-storage · vs ceiling |',
    '| --- | --- | --- | --- | --- |',
    row(
      'SDK direct (presigned PUTs)',
      u.sdkDirect,
      `${r.ratios.sdkDirectVsLibStorage}× · ${r.ratios.sdkDirectVsCeiling}×`,
    ),
    row(
      'SDK direct, adaptive pool (default options)',
      u.sdkDirectAdaptive,
      `${ratio(u.sdkDirectAdaptive.MBps, u.libStorage.MBps)}× · ${ratio(u.sdkDirectAdaptive.MBps, u.ceiling.MBps)}×`,
    ),
    row(
      'SDK relay (through the coordinator)',
      u.sdkRelay,
      `${ratio(u.sdkRelay.MBps, u.libStorage.MBps)}× · ${ratio(u.sdkRelay.MBps, u.ceiling.MBps)}×`,
    ),
    row('`@aws-sdk/lib-storage` `Upload`', u.libStorage, `1× · ${ratio(u.libStorage.MBps, u.ceiling.MBps)}×`),
    row(
      'ceiling: presigned PUTs, no coordinator, no hashing',
      u.ceiling,
      `${ratio(u.ceiling.MBps, u.libStorage.MBps)}× · 1×`,
    ),
    '',
    '| download | MB/s | s | MB/s in the data phase | vs one GetObject · vs ceiling |',
    '| --- | --- | --- | --- | --- |',
    row('SDK parallel ranged GETs', d.sdk, `${r.ratios.sdkDownloadVsGetObject}× · ${r.ratios.sdkDownloadVsCeiling}×`),
    row(
      'coordinator streaming endpoint',
      d.serverStream,
      `${ratio(d.serverStream.MBps, d.getObject.MBps)}× · ${ratio(d.serverStream.MBps, d.ceiling.MBps)}×`,
    ),
    row('one `GetObject` stream', d.getObject, `1× · ${ratio(d.getObject.MBps, d.ceiling.MBps)}×`),
    row('ceiling: parallel ranged GETs, no coordinator', d.ceiling, `${ratio(d.ceiling.MBps, d.getObject.MBps)}× · 1×`),
    '',
    '| target | measured | met |',
    '| --- | --- | --- |',
    ...Object.entries(r.targets).map(([k, t]) => `| ${k} ≥ ${t.target}× | ${t.value}× | ${t.met ? 'yes' : 'no'} |`),
    '',
    `Throughput against concurrency (${r.sweep.sizeMiB} MiB file, MB/s; chart: \`bench/results/latest.svg\`):`,
    '',
    `| concurrency | ${Object.keys(r.sweep.series).join(' | ')} |`,
    `| --- | ${Object.keys(r.sweep.series)
      .map(() => '---')
      .join(' | ')} |`,
    ...r.sweep.levels.map(
      (c, i) =>
        `| ${c} | ${Object.values(r.sweep.series)
          .map((s) => s[i]?.MBps ?? '—')
          .join(' | ')} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

function svgChart(r: Results): string {
  const W = 900;
  const H = 420;
  const panels = [
    { title: 'Upload', keys: Object.keys(r.sweep.series).filter((k) => k.startsWith('upload')) },
    { title: 'Download', keys: Object.keys(r.sweep.series).filter((k) => k.startsWith('download')) },
  ];
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd'];
  const levels = r.sweep.levels;
  const max = Math.max(1, ...Object.values(r.sweep.series).flatMap((s) => s.map((p) => p.MBps)));
  const yMax = Math.ceil(max / 50) * 50;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Throughput vs concurrency — ${r.sweep.sizeMiB} MiB file, ${r.partSizeMiB} MiB parts, ${r.store} (${r.machine.cores} cores)</text>`,
  ];
  panels.forEach((p, pi) => {
    const x0 = 60 + pi * (W / 2);
    const y0 = 50;
    const pw = W / 2 - 100;
    const ph = H - 150;
    const xs = (i: number) => x0 + (levels.length === 1 ? pw / 2 : (i * pw) / (levels.length - 1));
    const ys = (v: number) => y0 + ph - (v / yMax) * ph;
    out.push(`<text x="${x0 + pw / 2}" y="${y0 - 8}" text-anchor="middle" font-weight="bold">${p.title}</text>`);
    for (let t = 0; t <= 5; t++) {
      const v = (yMax * t) / 5;
      out.push(
        `<line x1="${x0}" x2="${x0 + pw}" y1="${ys(v)}" y2="${ys(v)}" stroke="#ddd"/>`,
        `<text x="${x0 - 6}" y="${ys(v) + 4}" text-anchor="end">${round(v, 0)}</text>`,
      );
    }
    for (const [i, c] of levels.entries())
      out.push(`<text x="${xs(i)}" y="${y0 + ph + 16}" text-anchor="middle">${c}</text>`);
    out.push(
      `<text x="${x0 + pw / 2}" y="${y0 + ph + 34}" text-anchor="middle">concurrency</text>`,
      `<text x="${x0 - 40}" y="${y0 + ph / 2}" text-anchor="middle" transform="rotate(-90 ${x0 - 40} ${y0 + ph / 2})">MB/s</text>`,
    );
    p.keys.forEach((k, ki) => {
      const pts = r.sweep.series[k]!.map((pt, i) => `${xs(i)},${ys(pt.MBps)}`).join(' ');
      const color = colors[ki % colors.length];
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts}"/>`);
      for (const [i, pt] of r.sweep.series[k]!.entries())
        out.push(`<circle cx="${xs(i)}" cy="${ys(pt.MBps)}" r="3" fill="${color}"/>`);
      const ly = y0 + ph + 52 + ki * 16;
      out.push(
        `<line x1="${x0}" x2="${x0 + 20}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`,
        `<text x="${x0 + 26}" y="${ly}">${k.replace(/^(upload|download) /, '')}</text>`,
      );
    });
  });
  out.push('</svg>');
  return out.join('\n');
}

// ---------------------------------------------------------------- main

type UploadFigures = Record<'sdkDirect' | 'sdkDirectAdaptive' | 'sdkRelay' | 'libStorage' | 'ceiling', Figure>;
type DownloadFigures = Record<'sdk' | 'serverStream' | 'getObject' | 'ceiling', Figure>;
interface Results {
  benchmark: 'throughput';
  mode: 'quick' | 'full';
  command: string;
  startedAt: string;
  seconds: number;
  machine: ReturnType<typeof machine>;
  store: string;
  stack: { s3: string; coordinator: string };
  sizeMiB: number;
  partSizeMiB: number;
  concurrency: number;
  runs: number;
  upload: UploadFigures;
  download: DownloadFigures;
  ratios: Record<string, number>;
  targets: Record<string, { value: number; target: number; met: boolean }>;
  coordinatorPeakRssMiB?: number;
  sweep: { sizeMiB: number; levels: number[]; series: Record<string, Figure[]> };
}

async function main() {
  const started = new Date();
  const t0 = performance.now();
  const s3State = await ensureS3();
  const bucket = process.env.S3_BUCKET!;
  const s3 = s3Client();
  const reuse = !!(process.env.CONVEYOR_URL && process.env.CONVEYOR_API_KEY);
  const coordinator: Coordinator | undefined = reuse
    ? undefined
    : await startCoordinator({ env: { MAX_INFLIGHT_PER_UPLOAD: '64', RELAY_MEMORY_BUDGET: String(512 * MiB) } });
  const conv = coordinator ?? { base: process.env.CONVEYOR_URL!, apiKey: process.env.CONVEYOR_API_KEY! };
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-bench-'));
  const prefix = `bench/${started.toISOString().replace(/[:.]/g, '-')}`;
  const keys: string[] = [];
  const key = (name: string) => {
    const k = `${prefix}/${name}-${randomBytes(3).toString('hex')}`;
    keys.push(k);
    return k;
  };
  try {
    const file = path.join(dir, 'big.bin');
    const out = path.join(dir, 'out.bin');
    log(`writing a ${SIZE / MiB} MiB file`);
    const sha = await makeFile(file, SIZE);
    const ctx: Ctx = { s3, bucket, coordinator: conv, file, size: SIZE, dir };
    const measure = async <T extends Figure>(name: string, fn: () => Promise<T>) => {
      log(`${name}…`);
      const r = await median(RUNS, fn);
      log(`${name}: ${r.MBps} MB/s (${r.seconds} s)`);
      return r;
    };
    const checkOut = async (what: string) => {
      const got = await sha256File(out);
      if (got !== sha) throw new Error(`${what}: the downloaded bytes differ`);
      await fs.rm(out, { force: true });
    };

    // Uploads. The coordinator's RSS is sampled throughout when it is ours.
    const run = async () => {
      const sdkDirect = await measure('upload: SDK direct', () => sdkUpload(ctx, C, 'direct'));
      if (sdkDirect.sha256 !== sha) throw new Error('the SDK declared another SHA-256');
      const sdkDirectAdaptive = await measure('upload: SDK direct, adaptive', () => sdkUpload(ctx, C, 'direct', true));
      const sdkRelay = await measure('upload: SDK relay', () => sdkUpload(ctx, C, 'relay'));
      const baseKey = key('lib-storage');
      const libStorage = await measure('upload: lib-storage', () => libStorageUpload(ctx, C, baseKey));
      const ceiling = await measure('upload: ceiling', () => ceilingUpload(ctx, C, key('ceiling')));

      const sdk = await measure('download: SDK', async () => {
        const r = await sdkDownload(ctx, C, sdkDirect.fileId, out);
        await checkOut('SDK download');
        return r;
      });
      const serverStream = await measure('download: streaming endpoint', async () => {
        const r = await serverStreamDownload(ctx, sdkDirect.fileId, out);
        await checkOut('streaming endpoint');
        return r;
      });
      const getObject = await measure('download: one GetObject', async () => {
        const r = await getObjectDownload(ctx, baseKey, out);
        await checkOut('GetObject');
        return r;
      });
      const dlCeiling = await measure('download: ceiling', async () => {
        const r = await ceilingDownload(ctx, C, baseKey, out);
        await checkOut('ceiling download');
        return r;
      });
      return {
        upload: { sdkDirect, sdkDirectAdaptive, sdkRelay, libStorage, ceiling },
        download: { sdk, serverStream, getObject, ceiling: dlCeiling },
      };
    };
    const main = coordinator
      ? await peakRss(coordinator.pid, run).then((r) => ({ ...r.result, peak: r.peak }))
      : { ...(await run()), peak: undefined };

    // Throughput against concurrency on a smaller file.
    const sweepFile = path.join(dir, 'sweep.bin');
    await makeFile(sweepFile, SWEEP_SIZE);
    const sctx: Ctx = { ...ctx, file: sweepFile, size: SWEEP_SIZE };
    const series: Record<string, Figure[]> = {
      'upload SDK direct': [],
      'upload lib-storage': [],
      'upload ceiling': [],
      'download SDK': [],
      'download ceiling': [],
    };
    for (const c of SWEEP) {
      log(`sweep: concurrency ${c}`);
      const up = await sdkUpload(sctx, c, 'direct');
      series['upload SDK direct']!.push(strip(up));
      const k = key(`sweep-${c}`);
      series['upload lib-storage']!.push(await libStorageUpload(sctx, c, k));
      series['upload ceiling']!.push(await ceilingUpload(sctx, c, key(`sweep-ceiling-${c}`)));
      series['download SDK']!.push(strip(await sdkDownload(sctx, c, up.fileId, out)));
      await fs.rm(out, { force: true });
      series['download ceiling']!.push(await ceilingDownload(sctx, c, k, out));
      await fs.rm(out, { force: true });
    }

    const { upload, download } = main;
    const ratios = {
      sdkDirectVsLibStorage: ratio(upload.sdkDirect.MBps, upload.libStorage.MBps),
      sdkDirectVsCeiling: ratio(upload.sdkDirect.MBps, upload.ceiling.MBps),
      sdkDownloadVsGetObject: ratio(download.sdk.MBps, download.getObject.MBps),
      sdkDownloadVsCeiling: ratio(download.sdk.MBps, download.ceiling.MBps),
      sdkRelayVsDirect: ratio(upload.sdkRelay.MBps, upload.sdkDirect.MBps),
    };
    const target = (value: number, t: number) => ({ value, target: t, met: value >= t });
    const cmd = `npm run bench --${QUICK ? ' --quick' : ''}${values['size-mib'] ? ` --size-mib ${values['size-mib']}` : ''}`;
    const results: Results = {
      benchmark: 'throughput',
      mode: QUICK ? 'quick' : 'full',
      command: cmd,
      startedAt: started.toISOString(),
      seconds: 0,
      machine: machine(),
      store: storeDescription(),
      stack: { s3: s3State, coordinator: coordinator ? 'started (fresh database)' : `reused ${conv.base}` },
      sizeMiB: SIZE / MiB,
      partSizeMiB: PART / MiB,
      concurrency: C,
      runs: RUNS,
      upload: Object.fromEntries(Object.entries(upload).map(([k, v]) => [k, strip(v)])) as UploadFigures,
      download: Object.fromEntries(Object.entries(download).map(([k, v]) => [k, strip(v)])) as DownloadFigures,
      ratios,
      targets: {
        'SDK direct upload / lib-storage': target(ratios.sdkDirectVsLibStorage, 0.95),
        'SDK direct upload / ceiling': target(ratios.sdkDirectVsCeiling, 0.85),
        'SDK download / one GetObject': target(ratios.sdkDownloadVsGetObject, 1.0),
      },
      ...(main.peak !== undefined ? { coordinatorPeakRssMiB: round(main.peak / MiB) } : {}),
      sweep: { sizeMiB: SWEEP_SIZE / MiB, levels: SWEEP, series },
    };
    results.seconds = round((performance.now() - t0) / 1000, 0);

    await fs.mkdir(OUT_DIR, { recursive: true });
    const stamp = started
      .toISOString()
      .replace(/[:]/g, '-')
      .replace(/\.\d+Z$/, 'Z');
    const json = `${JSON.stringify(results, null, 2)}\n`;
    const svg = svgChart(results);
    await fs.writeFile(path.join(OUT_DIR, `${stamp}.json`), json);
    await fs.writeFile(path.join(OUT_DIR, 'latest.json'), json);
    await fs.writeFile(path.join(OUT_DIR, `${stamp}.svg`), svg);
    await fs.writeFile(path.join(OUT_DIR, 'latest.svg'), svg);
    await fs.writeFile(path.join(OUT_DIR, 'latest.md'), markdown(results));
    console.log(markdown(results));
    console.log(
      `ratios: SDK direct / lib-storage ${ratios.sdkDirectVsLibStorage}×, SDK direct / ceiling ${ratios.sdkDirectVsCeiling}×, ` +
        `SDK download / one GetObject ${ratios.sdkDownloadVsGetObject}× (wrote ${OUT_DIR}/${stamp}.json, latest.{json,md,svg})`,
    );
  } finally {
    for (const k of keys) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k })).catch(() => {});
    await deleteUploadedObjects(sdkUploads);
    await coordinator?.stop();
    await fs.rm(dir, { recursive: true, force: true });
    s3.destroy();
  }
}

/** Only the figure's fields (no ids, no hashes). */
function strip(f: Figure): Figure {
  const { seconds, MBps, transferSeconds, transferMBps, note, runs } = f;
  return {
    seconds,
    MBps,
    ...(transferSeconds !== undefined ? { transferSeconds } : {}),
    ...(transferMBps !== undefined ? { transferMBps } : {}),
    ...(note ? { note } : {}),
    ...(runs ? { runs } : {}),
  };
}

await main();
