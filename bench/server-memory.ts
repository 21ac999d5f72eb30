/**
 * Server memory benchmark (issue: data plane). Starts a real coordinator process and reports its
 * peak RSS while (1) streaming a large file to a deliberately slow reader and (2) relaying 100
 * concurrent chunk uploads, against the bounds its configuration promises:
 *   streaming: about (DOWNLOAD_PREFETCH_WINDOW + 1) × DOWNLOAD_SEGMENT_SIZE per stream;
 *   relay:     at most RELAY_MEMORY_BUDGET of held chunk bodies (beyond it they are spooled).
 *
 *   npm run bench:server-memory [-- --size-mib 2048 --reader-mib-s 50]
 *
 * Uses DATABASE_URL (else the machine's PostgreSQL at 127.0.0.1:5432) and the S3_* variables
 * when set (else the local-disk store). Prints one JSON object.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  deleteUploadedObjects,
  MiB,
  machine,
  mib,
  peakRss,
  rssOf,
  startCoordinator,
  storeDescription,
} from './lib/coordinator.ts';

const { values } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '2048' },
    'reader-mib-s': { type: 'string', default: '50' },
    'relay-uploads': { type: 'string', default: '100' },
  },
});
const SIZE = Number(values['size-mib']) * MiB;
const READER_RATE = Number(values['reader-mib-s']) * MiB;
const RELAY_UPLOADS = Number(values['relay-uploads']);
const CHUNK = 8 * MiB;
const WINDOW = 4;
const SEGMENT = 8 * MiB;
const RELAY_BUDGET = 256 * MiB;

let KEY = '';
async function api(base: string, method: string, p: string, body?: unknown) {
  for (;;) {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    if (res.status === 429) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}

/** Deterministic content for chunk i (a shared random block, stamped so chunks differ). */
const block = randomBytes(CHUNK);
function chunkBytes(i: number, size: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(size);
  b.set(block.subarray(0, size));
  new DataView(b.buffer).setUint32(0, i);
  return b;
}

async function main() {
  const server = await startCoordinator({
    env: {
      DOWNLOAD_PREFETCH_WINDOW: String(WINDOW),
      DOWNLOAD_SEGMENT_SIZE: String(SEGMENT),
      RELAY_MEMORY_BUDGET: String(RELAY_BUDGET),
      MAX_INFLIGHT_PER_UPLOAD: '64',
    },
  });
  const uploaded: string[] = [];
  KEY = server.apiKey;
  const { base } = server;
  try {
    const { pid } = server;
    const baseline = rssOf(pid);

    // 1. A large file, uploaded directly (presigned PUTs, 8 in flight): the coordinator only coordinates.
    const up = await api(base, 'POST', '/v1/uploads', { fileName: 'big.bin', fileSize: SIZE, chunkSize: CHUNK });
    uploaded.push(up.uploadId);
    const hash = createHash('sha256');
    const sizes = Array.from({ length: up.totalChunks }, (_, i) =>
      i === up.totalChunks - 1 ? SIZE - i * CHUNK : CHUNK,
    );
    for (let i = 0; i < up.totalChunks; i++) hash.update(chunkBytes(i, sizes[i]!));
    const expectedSha = hash.digest('hex');
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < up.totalChunks) {
          const i = next++;
          const [c] = (
            await api(base, 'POST', `/v1/uploads/${up.uploadId}/chunks/presign`, { chunks: [{ chunkIndex: i }] })
          ).chunks;
          const headers = { ...c.headers };
          delete headers['content-length'];
          const res = await fetch(c.url, { method: 'PUT', headers, body: chunkBytes(i, sizes[i]!) });
          if (!res.ok) throw new Error(`PUT ${res.status}`);
          await api(base, 'PATCH', `/v1/uploads/${up.uploadId}/chunks/${i}`, {
            etag: res.headers.get('etag'),
            size: sizes[i],
          });
        }
      }),
    );
    await api(base, 'POST', `/v1/uploads/${up.uploadId}/complete`, {});
    const uploadSeconds = (performance.now() - t0) / 1000;

    // 2. Stream it back through the coordinator to a reader that takes READER_RATE bytes/s.
    const streaming = await peakRss(pid, async () => {
      const res = await fetch(`${base}/v1/files/${up.uploadId}/content`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      const reader = res.body!.getReader();
      const h = createHash('sha256');
      let got = 0;
      const start = performance.now();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        h.update(value);
        got += value.length;
        const ahead = got / READER_RATE - (performance.now() - start) / 1000;
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead * 1000));
      }
      return { bytes: got, sha256: h.digest('hex'), seconds: (performance.now() - start) / 1000 };
    });
    if (streaming.result.sha256 !== expectedSha) throw new Error('streamed bytes differ');

    // 3. Relay: RELAY_UPLOADS uploads of one 8 MiB chunk each, all at once, through the coordinator.
    const relayBaseline = rssOf(pid);
    const relay = await peakRss(pid, async () => {
      const t = performance.now();
      await Promise.all(
        Array.from({ length: RELAY_UPLOADS }, async (_, k) => {
          const u = await api(base, 'POST', '/v1/uploads', { fileName: `r${k}`, fileSize: CHUNK });
          uploaded.push(u.uploadId);
          for (;;) {
            const res = await fetch(`${base}/v1/uploads/${u.uploadId}/chunks/0`, {
              method: 'PUT',
              headers: { authorization: `Bearer ${KEY}` },
              body: chunkBytes(k, CHUNK),
            });
            if (res.status === 200) break;
            if (res.status !== 429) throw new Error(`relay PUT ${res.status}: ${await res.text()}`);
            await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
          }
          await api(base, 'POST', `/v1/uploads/${u.uploadId}/complete`, {});
        }),
      );
      return { seconds: (performance.now() - t) / 1000 };
    });

    console.log(
      JSON.stringify(
        {
          benchmark: 'server-memory',
          command: `npm run bench:server-memory -- --size-mib ${SIZE / MiB} --reader-mib-s ${READER_RATE / MiB}`,
          machine: machine(),
          store: storeDescription(),
          baselineRssMiB: mib(baseline),
          upload: {
            sizeMiB: SIZE / MiB,
            seconds: Math.round(uploadSeconds * 10) / 10,
            MiBps: Math.round(SIZE / MiB / uploadSeconds),
          },
          streamingSlowReader: {
            readerMiBps: READER_RATE / MiB,
            seconds: Math.round(streaming.result.seconds * 10) / 10,
            peakRssMiB: mib(streaming.peak),
            growthOverBaselineMiB: mib(streaming.peak - baseline),
            boundMiB: mib((WINDOW + 1) * SEGMENT),
          },
          relay100: {
            uploads: RELAY_UPLOADS,
            seconds: Math.round(relay.result.seconds * 10) / 10,
            MiBps: Math.round((RELAY_UPLOADS * CHUNK) / MiB / relay.result.seconds),
            peakRssMiB: mib(relay.peak),
            growthOverBaselineMiB: mib(relay.peak - relayBaseline),
            boundMiB: mib(RELAY_BUDGET),
          },
        },
        null,
        2,
      ),
    );
  } finally {
    await deleteUploadedObjects(uploaded);
    await server.stop();
  }
}

await main();
