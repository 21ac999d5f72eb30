/**
 * Scenario 7: the coordinator's worker pool (MIN_WORKERS 2 … MAX_WORKERS 16, its defaults) while
 * relay load rises and falls. Relay clients each loop: init an upload of `chunks` 8 MiB chunks,
 * PUT them through the coordinator (`PUT /v1/uploads/{id}/chunks/{i}`, which queues on the worker
 * pool), abort it (the parts are discarded; nothing stays in S3). The number of clients follows
 * `profile`; `/metrics` is sampled every `everyMs`: worker_count, worker_busy_count,
 * task_queue_depth, and relayed MB/s from bytes_uploaded_total{path="relay"}.
 */
import { randomBytes } from 'node:crypto';
import { Agent } from 'undici';
import type { Coordinator } from '../lib/coordinator.ts';
import { log, round, sleep } from '../lib/measure.ts';

const CHUNK = 8 * 1024 * 1024;

export interface Sample {
  t: number;
  clients: number;
  workers: number;
  busy: number;
  queueDepth: number;
  relayMBps: number;
}

function gauge(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}
const relayBytes = (text: string) =>
  Number(/^bytes_uploaded_total\{[^}]*path="relay"[^}]*\} ([0-9.e+]+)$/m.exec(text)?.[1] ?? 0);

export async function workerScaling(
  co: Coordinator,
  o: { profile: Array<[seconds: number, clients: number]>; chunks: number; everyMs: number },
) {
  const body = new Uint8Array(randomBytes(CHUNK));
  const dispatcher = new Agent({ connections: null });
  const auth = { authorization: `Bearer ${co.apiKey}` };
  let target = 0;
  let running = 0;
  let stop = false;
  let failures = 0;
  let throttled = 0;
  const api = (method: string, path: string, init: RequestInit = {}) =>
    fetch(`${co.base}${path}`, { method, ...init, headers: { ...auth, ...init.headers }, dispatcher } as RequestInit);

  /** One relay client: uploads until there are more clients than the target. */
  const client = async (me: number) => {
    running++;
    try {
      while (!stop && me < target) {
        const init = await api('POST', '/v1/uploads', {
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ fileName: 'relay.bin', fileSize: CHUNK * o.chunks, chunkSize: CHUNK }),
        });
        if (init.status !== 201) {
          failures++;
          await sleep(200);
          continue;
        }
        const { uploadId } = (await init.json()) as { uploadId: string };
        for (let i = 0; i < o.chunks && !stop; ) {
          const res = await api('PUT', `/v1/uploads/${uploadId}/chunks/${i}`, {
            headers: { 'content-type': 'application/octet-stream' },
            body,
          });
          await res.arrayBuffer();
          if (res.status === 200) i++;
          else if (res.status === 429) {
            throttled++;
            await sleep(100 + Math.random() * 200);
          } else {
            failures++;
            break;
          }
        }
        await (await api('DELETE', `/v1/uploads/${uploadId}`)).arrayBuffer();
      }
    } catch {
      failures++;
    } finally {
      running--;
    }
  };

  const samples: Sample[] = [];
  const t0 = performance.now();
  let lastBytes = relayBytes(await (await fetch(`${co.base}/metrics`)).text());
  let lastT = t0;
  const sampler = setInterval(async () => {
    const text = await fetch(`${co.base}/metrics`)
      .then((r) => r.text())
      .catch(() => '');
    const now = performance.now();
    const bytes = relayBytes(text);
    samples.push({
      t: round((now - t0) / 1000, 1),
      clients: target,
      workers: gauge(text, 'worker_count'),
      busy: gauge(text, 'worker_busy_count'),
      queueDepth: gauge(text, 'task_queue_depth'),
      relayMBps: round((bytes - lastBytes) / 1e6 / ((now - lastT) / 1000)),
    });
    lastBytes = bytes;
    lastT = now;
  }, o.everyMs);

  const clients: Promise<void>[] = [];
  try {
    for (const [seconds, n] of o.profile) {
      log(`worker scaling: ${n} relay clients for ${seconds} s`);
      const before = target;
      target = n;
      for (let k = before; k < n; k++) clients.push(client(k));
      await sleep(seconds * 1000);
    }
  } finally {
    stop = true;
    await Promise.all(clients);
    clearInterval(sampler);
    await dispatcher.close();
  }
  const peakWorkers = Math.max(0, ...samples.map((s) => s.workers));
  return {
    model: `relay clients each: init → ${o.chunks} × PUT 8 MiB through the coordinator → abort`,
    profile: o.profile.map(([seconds, clients]) => ({ seconds, clients })),
    peakWorkers,
    peakQueueDepth: Math.max(0, ...samples.map((s) => s.queueDepth)),
    finalWorkers: samples.at(-1)?.workers ?? 0,
    relayFailures: failures,
    relayThrottled: throttled,
    stillRunning: running,
    samples,
  };
}
