import { AbortError, HTTPError, NetworkError, TimeoutError } from './errors.ts';
import { parseRetryAfter } from './retry.ts';

/**
 * How bulk bytes move: chunk PUTs (to presigned URLs or the relay endpoint) and ranged GETs.
 * Node uses `NodeHttpTransport` (node:http with a keep-alive agent); browsers `FetchTransport`.
 */
/**
 * A request body read on demand, slice by slice (a range of a file): the transport never needs
 * the whole chunk in memory, and a retry simply reads it again.
 */
export interface BodySource {
  readonly byteLength: number;
  /** `length` bytes at `offset` within the body; read into `into` when given (the result may be a view of it). */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
}

export interface BulkRequest {
  method: 'PUT' | 'GET';
  url: string;
  /** Sent exactly as given (presigned headers are part of the signature). */
  headers: Record<string, string>;
  body?: Uint8Array | BodySource;
  signal?: AbortSignal;
  /** A `TimeoutError` when no byte moves for this long. */
  idleTimeoutMs: number;
  /** Called with the number of new bytes sent (PUT) or received (GET). */
  onProgress?: (bytes: number) => void;
  /** A GET's expected body length: lets the transport allocate once. */
  expectedLength?: number;
  /**
   * A 2xx body delivered piece by piece instead of collected (`BulkResponse.body` is then empty).
   * The next piece waits for a returned promise; a throw or rejection fails the request.
   */
  onData?: (bytes: Uint8Array) => void | Promise<void>;
}

export interface BulkResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface BulkTransport {
  send(req: BulkRequest): Promise<BulkResponse>;
  /** Frees sockets; the transport may be used again afterwards. */
  close?(): void;
}

/** `fetch`-based transport for browsers (and any runtime without node:http). */
export class FetchTransport implements BulkTransport {
  constructor(readonly fetch: typeof globalThis.fetch = globalThis.fetch.bind(globalThis)) {}

  async send(req: BulkRequest): Promise<BulkResponse> {
    const idle = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(new TimeoutError(req.idleTimeoutMs)), req.idleTimeoutMs);
    };
    const signal = req.signal ? anySignal([req.signal, idle.signal]) : idle.signal;
    arm();
    try {
      const body = req.body instanceof Uint8Array ? req.body : await req.body?.read(0, req.body.byteLength);
      const res = await this.fetch(req.url, {
        method: req.method,
        headers: req.headers,
        ...(body ? { body: body as BodyInit } : {}),
        signal,
      });
      if (body) req.onProgress?.(body.byteLength);
      const parts: Uint8Array[] = [];
      let total = 0;
      const reader = res.body?.getReader();
      const onData = res.ok ? req.onData : undefined;
      for (;;) {
        if (!reader) break;
        arm();
        const { done, value } = await reader.read();
        if (done) break;
        if (onData) {
          try {
            await onData(value);
          } catch (e) {
            throw new DataError(e);
          }
        } else {
          parts.push(value);
          total += value.byteLength;
        }
        if (req.method === 'GET') req.onProgress?.(value.byteLength);
      }
      const resBody = parts.length === 1 ? parts[0]! : concat(parts, total);
      const headers: Record<string, string> = {};
      res.headers.forEach((v, k) => {
        headers[k] = v;
      });
      return { status: res.status, headers, body: resBody };
    } catch (err) {
      if (idle.signal.aborted) throw idle.signal.reason;
      if (req.signal?.aborted) throw new AbortError(req.signal.reason);
      if (err instanceof DataError) throw err.cause;
      // fetch reports refused connections, resets and CORS refusals alike as a TypeError.
      throw new NetworkError(`${req.method} ${redact(req.url)} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Carries an `onData` failure out of the fetch error handling unchanged. */
class DataError {
  constructor(readonly cause: unknown) {}
}

function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as unknown as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) return any(signals);
  const c = new AbortController();
  for (const s of signals) {
    if (s.aborted) c.abort(s.reason);
    else s.addEventListener('abort', () => c.abort(s.reason), { once: true });
  }
  return c.signal;
}

export function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** A URL without its query (presigned signatures and tokens must not reach logs or error messages). */
export function redact(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : `${url.slice(0, q)}?…`;
}

/**
 * The error for a non-2xx answer from a presigned store URL or the coordinator. S3 answers
 * `<Error><Code>…</Code><Message>…</Message></Error>`; the coordinator `{"error": {code, message}}`.
 */
export function httpErrorFrom(res: BulkResponse, origin: 'coordinator' | 'store'): HTTPError {
  const text = new TextDecoder().decode(res.body.subarray(0, 64 * 1024));
  let code = `http_${res.status}`;
  let message = `HTTP ${res.status}`;
  let extra: Record<string, unknown> | undefined;
  const xmlCode = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  if (xmlCode) {
    code = xmlCode;
    message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1] ?? xmlCode;
  } else if (text.startsWith('{')) {
    try {
      const e = (JSON.parse(text) as { error?: Record<string, unknown> }).error;
      if (e && typeof e.code === 'string') {
        const { code: c, message: m, ...rest } = e;
        code = c as string;
        message = typeof m === 'string' ? m : code;
        extra = rest;
      }
    } catch {
      // not JSON after all: keep the status
    }
  }
  const requestId = res.headers['x-request-id'] ?? res.headers['x-amz-request-id'];
  const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
  return new HTTPError(res.status, code, message, {
    origin,
    ...(requestId ? { requestId } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(extra ? { extra } : {}),
  });
}
