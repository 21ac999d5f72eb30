/**
 * Scenarios 3 and 4: one SDK direct upload, in this process, with its JSON API calls (`fetch`) and
 * its chunk PUTs (the bulk transport) wrapped in timers: average and p95 latency of presign, PUT
 * and report. Then the same upload with faults injected between the SDK and S3
 * (test/helpers/fault-proxy.ts: `503 SlowDown` answers and connections reset halfway through a
 * PUT's body), and the retry rate of each: retries / chunks, and PUT attempts / chunks.
 */
import path from 'node:path';
import { ConveyorClient, NodeHttpTransport } from '../../client-sdk/index.ts';
import type { BulkRequest, BulkTransport } from '../../client-sdk/transport.ts';
import { type FaultOptions, startFaultProxy } from '../../test/helpers/fault-proxy.ts';
import { makeFile } from '../lib/files.ts';
import { figure, latencyStats, log, round, watch } from '../lib/measure.ts';
import type { Bench } from '../lib/stack.ts';

export const FAULTS: FaultOptions = { errorRate: 0.05, resetRate: 0.05, seed: 7 };

async function instrumentedUpload(b: Bench, file: string, size: number, c: number, urlRewrite?: (u: string) => string) {
  const t = { presign: [] as number[], put: [] as number[], report: [] as number[] };
  const status: Record<string, number> = {};
  let putAttempts = 0;
  const timedFetch: typeof fetch = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input);
    const kind = /\/chunks\/presign$/.test(url) ? 'presign' : init?.method === 'PATCH' ? 'report' : undefined;
    const t0 = performance.now();
    const res = await fetch(input, init);
    if (kind) {
      // The body is part of the call's latency: the SDK parses it before going on.
      const body = await res.arrayBuffer();
      t[kind].push(performance.now() - t0);
      status[`${kind} ${res.status}`] = (status[`${kind} ${res.status}`] ?? 0) + 1;
      const empty = res.status === 204 || res.status === 205 || res.status === 304;
      return new Response(empty ? null : body, {
        status: res.status,
        statusText: res.statusText,
        headers: res.headers,
      });
    }
    return res;
  };
  const inner = new NodeHttpTransport();
  const transport: BulkTransport = {
    async send(req: BulkRequest) {
      const t0 = performance.now();
      putAttempts++;
      try {
        const res = await inner.send(req);
        if (res.status >= 200 && res.status < 300) t.put.push(performance.now() - t0);
        status[`PUT ${res.status}`] = (status[`PUT ${res.status}`] ?? 0) + 1;
        return res;
      } catch (err) {
        status['PUT network error'] = (status['PUT network error'] ?? 0) + 1;
        throw err;
      }
    },
    close: () => inner.close(),
  };
  const client = new ConveyorClient({
    baseUrl: b.coordinator.base,
    apiKey: b.coordinator.apiKey,
    resumeStore: false,
    fetch: timedFetch,
    transport,
    ...(urlRewrite ? { urlRewrite } : {}),
  });
  try {
    const t0 = performance.now();
    const r = await client.upload(file, {
      resume: false,
      chunkSize: b.part,
      concurrency: { initial: c, min: c, max: c, adaptive: false },
      // Backoff short enough for a benchmark; the policy (what is retried) is the default.
      retry: { baseDelayMs: 50, maxDelayMs: 1000 },
    });
    b.uploaded(r.fileId);
    return {
      ...figure(size, (performance.now() - t0) / 1000),
      chunks: r.chunksTotal,
      retries: r.retries,
      putAttempts,
      retryRate: round(r.retries / r.chunksTotal, 3),
      putAttemptsPerChunk: round(putAttempts / r.chunksTotal, 3),
      presignCalls: r.presignCalls,
      latency: { presign: latencyStats(t.presign), put: latencyStats(t.put), report: latencyStats(t.report) },
      statusCounts: status,
    };
  } finally {
    client.close();
  }
}

export async function chunkLatency(b: Bench, o: { size: number; concurrency: number }) {
  const file = path.join(b.dir, 'latency.bin');
  await makeFile(file, o.size);
  log('chunk latency: SDK direct upload, no faults');
  const clean = await watch(b.coordinator.pid, () => instrumentedUpload(b, file, o.size, o.concurrency));
  log(`chunk latency: ${JSON.stringify(clean.result.latency)}`);
  const proxy = await startFaultProxy(process.env.S3_ENDPOINT ?? 'http://127.0.0.1:7480', {
    ...FAULTS,
    only: (req) => req.method === 'PUT',
  });
  let faulty: Awaited<ReturnType<typeof instrumentedUpload>>;
  try {
    log('retries: SDK direct upload through a fault proxy');
    faulty = await instrumentedUpload(b, file, o.size, o.concurrency, (u) => proxy.rewrite(u));
  } finally {
    await proxy.close();
  }
  log(`retries: ${faulty.retries} over ${faulty.chunks} chunks (${JSON.stringify(proxy.counts.faults)})`);
  return {
    sizeMiB: o.size / 2 ** 20,
    concurrency: o.concurrency,
    noFaults: { ...clean.result, coordinator: { peakRssMiB: clean.peakRssMiB, cpuPercent: clean.cpuPercent } },
    withFaults: {
      ...faulty,
      injected: {
        ...proxy.counts.faults,
        config: `${(FAULTS.errorRate ?? 0) * 100}% of PUTs answered 503 SlowDown, ${(FAULTS.resetRate ?? 0) * 100}% reset halfway through the body (seed ${FAULTS.seed})`,
      },
    },
  };
}
