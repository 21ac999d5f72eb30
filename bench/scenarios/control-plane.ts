/**
 * Scenarios 5 and 6: the coordinator's control plane, with no bytes moved (presigned URLs are not
 * used; reports carry a made-up ETag, which the coordinator records without asking S3).
 *
 * 5. Saturation ramp: N concurrent uploads (10 → 1,000), each an SDK-like loop — presign one chunk,
 *    "PUT" it (a pause of `putMs` ± 50%, the time an 8 MiB PUT takes at 8 MiB/s), report it — for
 *    `seconds` per level. The knee is the first level where 429s exceed 1% of calls or p99
 *    presign latency passes 50 ms; the coordinator's CPU and RSS are recorded at every level.
 * 6. Capacity: autocannon, closed loop (every connection sends its next call as soon as the last
 *    is answered), presign-only and report-only, at 100 and 1,000 connections, each connection
 *    working on its own upload: calls per second and p50/p95/p99 latency.
 *
 * The uploads are created once (1,000 chunks of 8 MiB each) and aborted at the end, which also
 * aborts their S3 multipart uploads.
 */
import autocannon from 'autocannon';
import { Agent } from 'undici';
import type { Coordinator } from '../lib/coordinator.ts';
import { latencyStats, log, parallel, round, sleep, watch } from '../lib/measure.ts';

const CHUNK = 8 * 1024 * 1024;
const CHUNKS = 1000;

interface VUpload {
  id: string;
  /** Next chunk to presign / to report (each only goes forward, so no chunk is used twice). */
  next: number;
  reportNext: number;
}

export async function createUploads(co: Coordinator, n: number): Promise<VUpload[]> {
  const out: VUpload[] = [];
  await parallel(n, 16, async (i) => {
    const res = await fetch(`${co.base}/v1/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${co.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ fileName: `cp-${i}.bin`, fileSize: CHUNK * CHUNKS, chunkSize: CHUNK }),
    });
    if (res.status !== 201) throw new Error(`init: ${res.status} ${await res.text()}`);
    out.push({ id: ((await res.json()) as { uploadId: string }).uploadId, next: 0, reportNext: 0 });
  });
  return out;
}

export async function abortUploads(co: Coordinator, ups: VUpload[]) {
  await parallel(ups.length, 16, async (i) => {
    await fetch(`${co.base}/v1/uploads/${ups[i]!.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${co.apiKey}` },
    }).catch(() => {});
  });
}

const reportBody = (k: number) => JSON.stringify({ etag: `"bench-${k}"`, size: CHUNK });

/** One level of the ramp: `n` paced virtual uploads for `seconds`. */
async function rampLevel(co: Coordinator, ups: VUpload[], n: number, seconds: number, putMs: number) {
  const dispatcher = new Agent({ connections: null, keepAliveTimeout: 30_000 });
  const presign: number[] = [];
  const report: number[] = [];
  const status: Record<string, number> = {};
  let errors = 0;
  const call = async (kind: string, method: string, path: string, body: string, into: number[]) => {
    const t0 = performance.now();
    try {
      const res = await fetch(`${co.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${co.apiKey}`, 'content-type': 'application/json' },
        body,
        dispatcher,
      } as RequestInit);
      await res.arrayBuffer();
      into.push(performance.now() - t0);
      status[`${kind} ${res.status}`] = (status[`${kind} ${res.status}`] ?? 0) + 1;
      return res.status;
    } catch {
      errors++;
      return 0;
    }
  };
  const end = performance.now() + seconds * 1000;
  const w = await watch(co.pid, () =>
    Promise.all(
      ups.slice(0, n).map(async (u) => {
        await sleep(Math.random() * putMs); // spread the starts over one cycle
        while (performance.now() < end) {
          const k = u.next++ % CHUNKS;
          const body = JSON.stringify({ chunks: [{ chunkIndex: k }] });
          const s = await call('presign', 'POST', `/v1/uploads/${u.id}/chunks/presign`, body, presign);
          await sleep(putMs * (0.5 + Math.random()));
          if (s === 200) await call('report', 'PATCH', `/v1/uploads/${u.id}/chunks/${k}`, reportBody(k), report);
        }
      }),
    ),
  );
  await dispatcher.close();
  const calls = presign.length + report.length;
  const throttled = Object.entries(status)
    .filter(([k]) => k.endsWith(' 429'))
    .reduce((a, [, v]) => a + v, 0);
  return {
    uploads: n,
    presignPerSecond: round(presign.length / seconds),
    reportPerSecond: round(report.length / seconds),
    presign: latencyStats(presign),
    report: latencyStats(report),
    throttledShare: calls ? round(throttled / calls, 4) : 0,
    errors,
    statusCounts: status,
    coordinator: { cpuPercent: w.cpuPercent, peakRssMiB: w.peakRssMiB },
  };
}

/**
 * The knee: the first level from which every higher level is over the criterion too. A lone level
 * over it below levels that are not (at 10 uploads a p99 is nearly the one slowest of ~40 calls,
 * and one scheduling hiccup on a shared machine makes it) is noise, not saturation.
 */
export function kneeOf(levels: ReadonlyArray<{ uploads: number; over: boolean }>): number | undefined {
  let knee: number | undefined;
  for (const l of levels) {
    if (!l.over) knee = undefined;
    else knee ??= l.uploads;
  }
  return knee;
}

export async function saturationRamp(
  co: Coordinator,
  ups: VUpload[],
  o: { levels: number[]; seconds: number; putMs: number },
) {
  const levels: Awaited<ReturnType<typeof rampLevel>>[] = [];
  for (const n of o.levels) {
    const r = await rampLevel(co, ups, n, o.seconds, o.putMs);
    log(
      `ramp: ${n} uploads: ${r.presignPerSecond} presign/s p99 ${r.presign.p99Ms} ms, 429 share ${r.throttledShare}, coordinator CPU ${r.coordinator.cpuPercent}%`,
    );
    levels.push(r);
  }
  const knee = kneeOf(
    levels.map((l) => ({ uploads: l.uploads, over: l.throttledShare > 0.01 || l.presign.p99Ms > 50 })),
  );
  const at = levels.find((l) => l.uploads === knee);
  return {
    model: `each upload: presign 1 chunk → pause ${o.putMs} ms ± 50% (its PUT) → report; ${o.seconds} s per level`,
    criterion: '429s > 1% of calls, or p99 presign latency > 50 ms, at that level and every level above it',
    levels,
    knee: knee ?? null,
    kneeNote:
      knee === undefined
        ? `not reached up to ${o.levels.at(-1)} concurrent uploads`
        : `at ${knee} concurrent uploads: coordinator CPU ${at?.coordinator.cpuPercent}% of one core, RSS ${at?.coordinator.peakRssMiB} MiB`,
  };
}

/** autocannon, closed loop: `connections` connections, each on its own upload, for `seconds`. */
async function cannon(
  co: Coordinator,
  ups: VUpload[],
  kind: 'presign' | 'report',
  connections: number,
  seconds: number,
) {
  const free = ups.slice(0, connections);
  const latencies: number[] = [];
  const request: autocannon.Request = {
    method: kind === 'presign' ? 'POST' : 'PATCH',
    path: '/',
    setupRequest: (req, context) => {
      const u = free.pop() ?? ups[0]!;
      (context as { u?: VUpload }).u = u;
      if (kind === 'presign') {
        const k = u.next++ % CHUNKS;
        return {
          ...req,
          path: `/v1/uploads/${u.id}/chunks/presign`,
          body: JSON.stringify({ chunks: [{ chunkIndex: k }] }),
        };
      }
      const k = u.reportNext++ % CHUNKS;
      return { ...req, path: `/v1/uploads/${u.id}/chunks/${k}`, body: reportBody(k) };
    },
    onResponse: (_status, _body, context) => {
      const u = (context as { u?: VUpload }).u;
      if (u) free.push(u);
    },
  };
  const w = await watch(co.pid, () => {
    return new Promise<autocannon.Result>((resolve, reject) => {
      const inst = autocannon(
        {
          url: co.base,
          connections,
          duration: seconds,
          headers: { authorization: `Bearer ${co.apiKey}`, 'content-type': 'application/json' },
          requests: [request],
          timeout: 30,
        },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
      inst.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
    });
  });
  const r = w.result;
  const ok = Object.entries(r.statusCodeStats ?? {})
    .filter(([s]) => s.startsWith('2'))
    .reduce((a, [, v]) => a + (v.count ?? 0), 0);
  const lat = latencyStats(latencies);
  return {
    endpoint:
      kind === 'presign' ? 'POST /v1/uploads/{id}/chunks/presign (1 chunk)' : 'PATCH /v1/uploads/{id}/chunks/{i}',
    connections,
    seconds,
    perSecond: round(ok / r.duration),
    p50Ms: lat.p50Ms,
    p95Ms: lat.p95Ms,
    p99Ms: lat.p99Ms,
    maxMs: lat.maxMs,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    coordinator: { cpuPercent: w.cpuPercent, peakRssMiB: w.peakRssMiB },
  };
}

export async function controlPlane(co: Coordinator, ups: VUpload[], o: { connections: number[]; seconds: number }) {
  const runs = [];
  for (const kind of ['presign', 'report'] as const)
    for (const c of o.connections) {
      const r = await cannon(co, ups, kind, c, o.seconds);
      log(`autocannon ${kind} × ${c}: ${r.perSecond}/s, p50 ${r.p50Ms} p95 ${r.p95Ms} p99 ${r.p99Ms} ms`);
      runs.push(r);
    }
  return {
    tool: 'autocannon 9.0.0 (in the benchmark process, on the same 2 cores as the coordinator and PostgreSQL)',
    runs,
  };
}
