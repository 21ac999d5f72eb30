import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { AbortError, NetworkError, TimeoutError } from './errors.ts';
import { type BodySource, type BulkRequest, type BulkResponse, type BulkTransport, redact } from './transport.ts';

/** Bytes handed to the socket per write: small enough for smooth progress, big enough to be cheap. */
const WRITE_SLICE = 256 * 1024;
/** Slice buffers kept for reuse by streamed bodies (two per request in flight). */
const SPARE_SLICES = 32;

export interface NodeHttpTransportOptions {
  /** Sockets per host; above the pool's maximum so a retry never waits for one. @default 64 */
  maxSockets?: number;
  /**
   * Extra PEM CA certificate(s) trusted for `https://` URLs, on top of Node's public roots (and
   * `NODE_EXTRA_CA_CERTS`): a coordinator or S3 endpoint with a private CA. @default none
   */
  ca?: string | Buffer | Array<string | Buffer>;
}

/** `https.Agent` options trusting the public roots plus `extra` (Node's `ca` replaces the roots otherwise). */
export function caOptions(extra: NodeHttpTransportOptions['ca']): { ca?: Array<string | Buffer> } {
  if (extra === undefined) return {};
  return { ca: [...tls.rootCertificates, ...(Array.isArray(extra) ? extra : [extra])] };
}

/**
 * node:http(s) with keep-alive agents for chunk PUTs and GETs: on this machine about 1.3× the
 * throughput of fetch (undici) for 8 MiB bodies, and it reports upload progress as the socket drains.
 */
export class NodeHttpTransport implements BulkTransport {
  #http: http.Agent;
  #https: https.Agent;
  readonly #maxSockets: number;
  readonly #tls: { ca?: Array<string | Buffer> };
  /** Reusable WRITE_SLICE buffers for bodies read from a `BodySource`. */
  readonly #slices: Buffer[] = [];

  constructor(options: NodeHttpTransportOptions = {}) {
    this.#maxSockets = options.maxSockets ?? 64;
    this.#tls = caOptions(options.ca);
    this.#http = new http.Agent({ keepAlive: true, maxSockets: this.#maxSockets });
    this.#https = new https.Agent({ keepAlive: true, maxSockets: this.#maxSockets, ...this.#tls });
  }

  close(): void {
    this.#http.destroy();
    this.#https.destroy();
    this.#http = new http.Agent({ keepAlive: true, maxSockets: this.#maxSockets });
    this.#https = new https.Agent({ keepAlive: true, maxSockets: this.#maxSockets, ...this.#tls });
  }

  send(req: BulkRequest): Promise<BulkResponse> {
    const url = new URL(req.url);
    const secure = url.protocol === 'https:';
    const request = secure ? https.request : http.request;
    const headers: Record<string, string> = { ...req.headers };
    if (req.body && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-length')) {
      headers['content-length'] = String(req.body.byteLength);
    }
    return new Promise<BulkResponse>((resolve, reject) => {
      if (req.signal?.aborted) return reject(new AbortError(req.signal.reason));
      let settled = false;
      const finish = (err: unknown, res?: BulkResponse) => {
        if (settled) return;
        settled = true;
        req.signal?.removeEventListener('abort', onAbort);
        if (err) {
          r.destroy();
          reject(err);
        } else resolve(res!);
      };
      const onAbort = () => finish(new AbortError(req.signal?.reason));
      req.signal?.addEventListener('abort', onAbort, { once: true });

      const r = request(url, { method: req.method, headers, agent: secure ? this.#https : this.#http });
      // Idle timeout: no byte in either direction for idleTimeoutMs.
      r.setTimeout(req.idleTimeoutMs, () => finish(new TimeoutError(req.idleTimeoutMs)));
      r.on('error', (err: NodeJS.ErrnoException) => {
        finish(
          new NetworkError(`${req.method} ${redact(req.url)}: ${err.message}`, {
            cause: err,
            ...(err.code ? { code: err.code } : {}),
          }),
        );
      });
      r.on('response', (res) => {
        const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
        const onData = ok ? req.onData : undefined;
        const expected = ok && !onData && req.expectedLength !== undefined ? req.expectedLength : undefined;
        let buf = expected !== undefined ? Buffer.allocUnsafe(expected) : undefined;
        const parts: Buffer[] = [];
        let received = 0;
        res.on('data', (d: Buffer) => {
          if (settled) return;
          if (onData) {
            // Streamed to the caller: the next piece waits until it has taken this one.
            received += d.length;
            if (req.method === 'GET') req.onProgress?.(d.length);
            let pending: void | Promise<void>;
            try {
              pending = onData(d);
            } catch (err) {
              return finish(err);
            }
            if (pending) {
              res.pause();
              pending.then(
                () => res.resume(),
                (err: unknown) => finish(err),
              );
            }
            return;
          }
          if (buf && received + d.length <= buf.length) d.copy(buf, received);
          else {
            if (buf) {
              parts.push(buf.subarray(0, received));
              buf = undefined;
            }
            parts.push(d);
          }
          received += d.length;
          if (ok && req.method === 'GET') req.onProgress?.(d.length);
        });
        res.on('error', (err) =>
          finish(new NetworkError(`${req.method} ${redact(req.url)}: ${err.message}`, { cause: err })),
        );
        res.on('aborted', () => finish(new NetworkError(`${req.method} ${redact(req.url)}: response aborted`)));
        res.on('end', () => {
          if (!res.complete) return finish(new NetworkError(`${req.method} ${redact(req.url)}: response cut short`));
          const body = onData ? Buffer.alloc(0) : buf ? buf.subarray(0, received) : Buffer.concat(parts);
          const h: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers))
            if (v !== undefined) h[k] = Array.isArray(v) ? v.join(', ') : v;
          finish(undefined, { status: res.statusCode ?? 0, headers: h, body });
        });
      });

      const body = req.body;
      if (!body || body.byteLength === 0) {
        r.end();
        return;
      }
      if (!(body instanceof Uint8Array)) {
        this.#stream(body, r, req, () => settled).catch((err: unknown) => finish(err));
        return;
      }
      // Written in slices: each drain is progress, and the socket never buffers the whole chunk twice.
      let off = 0;
      const writeMore = () => {
        while (off < body.byteLength && !settled) {
          const slice = body.subarray(off, Math.min(body.byteLength, off + WRITE_SLICE));
          off += slice.byteLength;
          const n = slice.byteLength;
          const more = r.write(slice, () => req.onProgress?.(n));
          if (!more) {
            r.once('drain', writeMore);
            return;
          }
        }
        if (off >= body.byteLength) r.end();
      };
      writeMore();
    });
  }

  /**
   * Writes a `BodySource` through two alternating slice buffers: one is read into while the other
   * is on its way to the socket, and a buffer is reused only once its write has completed (the
   * data is in the kernel). A chunk in flight thus costs two slices, not its whole size.
   */
  async #stream(body: BodySource, r: http.ClientRequest, req: BulkRequest, done: () => boolean): Promise<void> {
    const bufs = [
      this.#slices.pop() ?? Buffer.allocUnsafe(WRITE_SLICE),
      this.#slices.pop() ?? Buffer.allocUnsafe(WRITE_SLICE),
    ];
    const writes: Array<Promise<void> | undefined> = [undefined, undefined];
    let k = 0;
    try {
      for (let off = 0; off < body.byteLength; ) {
        const n = Math.min(WRITE_SLICE, body.byteLength - off);
        await writes[k];
        if (done()) return;
        const view = await body.read(off, n, bufs[k]);
        if (done()) return;
        if (view.byteLength !== n) throw new Error(`The body source gave ${view.byteLength} bytes instead of ${n}`);
        off += n;
        let more = true;
        writes[k] = new Promise<void>((release) => {
          more = r.write(view, (err) => {
            release();
            if (!err) req.onProgress?.(n);
          });
        });
        if (!more) await drainOrClose(r);
        k ^= 1;
      }
      if (!done()) r.end();
    } finally {
      // Back to the spares once no write holds them (never, if the request died with writes queued).
      Promise.all(writes).then(() => {
        for (const b of bufs) if (this.#slices.length < SPARE_SLICES) this.#slices.push(b);
      });
    }
  }
}

function drainOrClose(r: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      r.off('drain', done);
      r.off('close', done);
      resolve();
    };
    r.on('drain', done);
    r.on('close', done);
  });
}
