import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';

/**
 * A loopback HTTP proxy in front of one origin (the S3 gateway, or the coordinator) that can
 * inject faults: `503 SlowDown` answers, connection resets halfway through a body, truncated
 * bodies (a clean end after half the declared bytes), stalls, and slow reads and writes.
 * It forwards with the target's Host header, so SigV4-presigned URLs rewritten to point here
 * still verify. Faults are drawn from a seeded generator, so a run is reproducible.
 */
export interface FaultOptions {
  /** Share of requests answered `503 SlowDown` without reaching the target. @default 0 */
  errorRate?: number;
  /** Share of requests whose connection is reset halfway through the body. @default 0 */
  resetRate?: number;
  /** Share of requests held for `stallMs` before being forwarded. @default 0 */
  stallRate?: number;
  /** @default 1000 */
  stallMs?: number;
  /**
   * Share of requests whose body is cut short with a clean close (FIN, not RST): a GET's
   * response stops after half its Content-Length; another method's request body reaches the
   * target only halfway, then both connections are ended. @default 0
   */
  truncateRate?: number;
  /** Share of requests whose bodies (request and response) move at `bytesPerSecond`. @default 0 */
  slowRate?: number;
  /** @default 1 MiB/s */
  bytesPerSecond?: number;
  /** Which requests may be faulted. @default all */
  only?: (req: http.IncomingMessage) => boolean;
  /** Seed of the fault generator. @default 1 */
  seed?: number;
  /**
   * Forward the client's Host header unchanged: for a client configured with the proxy as its
   * endpoint (its SigV4 signature covers the proxy's host), rather than URLs rewritten to it.
   * @default false
   */
  keepHost?: boolean;
}

export interface FaultProxy {
  url: string;
  /** Requests seen, by method, and faults injected, by kind. */
  counts: {
    requests: Record<string, number>;
    faults: { error: number; reset: number; stall: number; truncate: number; slow: number };
  };
  /** Called for every request before it is forwarded; may wait (delays) or act (kill a client). */
  hook: ((req: http.IncomingMessage) => Promise<void> | void) | undefined;
  faults: FaultOptions;
  /** Rewrites a URL of the target's origin to go through the proxy. */
  rewrite(url: string): string;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string, faults: FaultOptions = {}): Promise<FaultProxy> {
  const t = new URL(target);
  let seed = faults.seed ?? 1;
  // mulberry32: a tiny seeded PRNG.
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const proxy: FaultProxy = {
    url: '',
    counts: { requests: {}, faults: { error: 0, reset: 0, stall: 0, truncate: 0, slow: 0 } },
    hook: undefined,
    faults,
    rewrite: (u) => {
      const x = new URL(u);
      if (x.origin !== t.origin) return u;
      return `${proxy.url}${x.pathname}${x.search}`;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      agent.destroy();
    },
  };

  const server = http.createServer(async (req, res) => {
    const method = req.method ?? 'GET';
    proxy.counts.requests[method] = (proxy.counts.requests[method] ?? 0) + 1;
    await proxy.hook?.(req);
    const f = proxy.faults;
    const eligible = f.only?.(req) ?? true;
    const roll = eligible ? random() : 1;
    const errorRate = f.errorRate ?? 0;
    const resetRate = f.resetRate ?? 0;
    const stallRate = f.stallRate ?? 0;
    if (roll < errorRate) {
      proxy.counts.faults.error++;
      req.resume();
      req.on('end', () => {
        res.writeHead(503, { 'content-type': 'application/xml', 'retry-after': '0' });
        res.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Injected 503</Message></Error>');
      });
      return;
    }
    const reset = roll < errorRate + resetRate;
    const truncateAt = errorRate + resetRate + (f.truncateRate ?? 0);
    const truncate = !reset && roll < truncateAt;
    if (!reset && !truncate && roll < truncateAt + stallRate) {
      proxy.counts.faults.stall++;
      await new Promise((r) => setTimeout(r, f.stallMs ?? 1000));
    }
    const slow =
      !reset && !truncate && roll >= truncateAt + stallRate && roll < truncateAt + stallRate + (f.slowRate ?? 0);
    if (reset) proxy.counts.faults.reset++;
    if (truncate) proxy.counts.faults.truncate++;
    if (slow) proxy.counts.faults.slow++;
    const rate = f.bytesPerSecond ?? 1024 * 1024;

    const headers = f.keepHost ? req.headers : { ...req.headers, host: t.host };
    const up = http.request({ host: t.hostname, port: t.port, method, path: req.url, headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (truncate && method === 'GET') {
        // Half the declared bytes, then a clean end: only the length tells the client it is short.
        const half = Math.floor(Number(upRes.headers['content-length'] ?? 0) / 2);
        let sent = 0;
        upRes.on('data', (d: Buffer) => {
          if (sent >= half) return;
          const part = d.subarray(0, Math.max(0, half - sent));
          sent += part.length;
          res.write(part);
          if (sent >= half) {
            upRes.destroy();
            res.socket?.end();
          }
        });
        upRes.on('end', () => res.socket?.end());
        return;
      }
      if (slow) {
        throttled(upRes, rate).pipe(res);
        return;
      }
      if (reset && method === 'GET') {
        // Half the body, then the connection dies.
        const half = Math.floor(Number(upRes.headers['content-length'] ?? 0) / 2);
        let sent = 0;
        upRes.on('data', (d: Buffer) => {
          if (sent + d.length >= half) {
            res.write(d.subarray(0, Math.max(0, half - sent)));
            res.socket?.destroy();
            upRes.destroy();
            return;
          }
          sent += d.length;
          res.write(d);
        });
        return;
      }
      upRes.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    if (truncate && method !== 'GET') {
      // Half the request body reaches the target, then both connections end cleanly (FIN).
      const half = Math.floor(Number(req.headers['content-length'] ?? 0) / 2);
      let got = 0;
      req.on('data', (d: Buffer) => {
        if (got >= half) return;
        const part = d.subarray(0, Math.max(0, half - got));
        got += part.length;
        up.write(part);
        if (got >= half) {
          up.socket?.end();
          up.destroy();
          req.socket.end();
        }
      });
      return;
    }
    if (slow) {
      throttled(req, rate).pipe(up);
      return;
    }
    if (reset && method !== 'GET') {
      // Half the request body reaches the target, then both connections are cut.
      const half = Math.floor(Number(req.headers['content-length'] ?? 0) / 2);
      let got = 0;
      req.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= half) {
          up.destroy();
          req.socket.destroy();
        }
      });
      return;
    }
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

/** `source` re-emitted at about `bytesPerSecond`, in 16 KiB slices. */
function throttled(source: NodeJS.ReadableStream, bytesPerSecond: number): PassThrough {
  const out = new PassThrough();
  const slice = 16 * 1024;
  (async () => {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i += slice) {
        const part = chunk.subarray(i, i + slice);
        if (!out.write(part)) await new Promise((r) => out.once('drain', r));
        await new Promise((r) => setTimeout(r, (part.length / bytesPerSecond) * 1000));
      }
    }
    out.end();
  })().catch((err) => out.destroy(err));
  return out;
}

/** A counter's total from the Prometheus text of `/metrics` (all label sets summed). */
export async function metricTotal(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`))
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
