import { AbortError, NetworkError, TimeoutError } from './errors.ts';
import { budgetOf, type RetryPolicy, retryDecision } from './retry.ts';
import { httpErrorFrom } from './transport.ts';

/** The coordinator's REST API (shared/API.md), typed. JSON calls go through `fetch`. */

export interface InitUploadRequest {
  fileName: string;
  fileSize: number;
  contentType?: string;
  chunkSize?: number;
  checksumSha256?: string;
  metadata?: Record<string, string>;
}
export interface InitUploadResponse {
  uploadId: string;
  chunkSize: number;
  totalChunks: number;
  status: UploadStatus;
  expiresAt: string;
}
export type UploadStatus = 'INITIATED' | 'IN_PROGRESS' | 'COMPLETING' | 'COMPLETED' | 'ABORTED' | 'FAILED';
export interface PresignedChunk {
  chunkIndex: number;
  url: string;
  method: 'PUT';
  headers: Record<string, string>;
  expiresAt: string;
}
export interface UploadSummary {
  uploadId: string;
  fileName: string;
  fileSize: number;
  contentType?: string;
  chunkSize: number;
  totalChunks: number;
  status: UploadStatus;
  createdAt: string;
  updatedAt: string;
  expiresAt?: string;
  completedAt?: string;
}
export interface UploadStatusResponse extends UploadSummary {
  uploadedChunks: number;
  missingChunks: number[];
}
export interface CompleteResponse {
  uploadId: string;
  status: 'COMPLETED';
  size: number;
  etag: string;
  checksumSha256?: string;
  fileId: string;
}
export interface ReportRequest {
  etag: string;
  size: number;
  md5?: string;
  sha256?: string;
  attempts?: number;
}
export interface FileManifest {
  fileId: string;
  fileName: string;
  size: number;
  contentType: string;
  etag: string;
  checksumSha256?: string;
  chunkSize: number;
  chunks: Array<{ chunkIndex: number; start: number; end: number; sha256?: string; url: string }>;
  expiresAt: string;
}

export interface ApiClientOptions {
  baseUrl: string;
  apiKey: string;
  fetch: typeof globalThis.fetch;
  retry: RetryPolicy;
  /** Total time for one JSON call. */
  timeoutMs: number;
  /** A throttled answer (429/503) was seen: the pool slows down. */
  onThrottle?: (retryAfterMs: number) => void;
  /** A call is retried. */
  onRetry?: (info: { method: string; path: string; attempt: number; delayMs: number; reason: string }) => void;
}

export interface CallOptions {
  body?: unknown;
  signal?: AbortSignal | undefined;
  idempotencyKey?: string;
  /** `false`: one attempt (the caller handles failures). @default true */
  retry?: boolean;
  /** This call's time limit. @default the client's `timeoutMs` */
  timeoutMs?: number;
}

/** Completing verifies the whole-file SHA-256 by reading the object back: minutes for a big file. */
const COMPLETE_TIMEOUT_MS = 15 * 60_000;

export class ApiClient {
  readonly baseUrl: string;
  constructor(readonly options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  get authorization(): string {
    return `Bearer ${this.options.apiKey}`;
  }

  initUpload(body: InitUploadRequest, idempotencyKey: string, signal?: AbortSignal) {
    return this.call<InitUploadResponse>('POST', '/v1/uploads', { body, idempotencyKey, signal });
  }
  /** Not retried here: a throttled presign is the pool's signal to slow down, so the chunk's retry path handles it. */
  presign(
    uploadId: string,
    chunks: Array<{ chunkIndex: number; md5?: string; sha256?: string }>,
    signal?: AbortSignal,
  ) {
    return this.call<{ chunks: PresignedChunk[] }>('POST', `/v1/uploads/${uploadId}/chunks/presign`, {
      body: { chunks },
      signal,
      retry: false,
    });
  }
  report(uploadId: string, chunkIndex: number, body: ReportRequest, signal?: AbortSignal) {
    return this.call<null>('PATCH', `/v1/uploads/${uploadId}/chunks/${chunkIndex}`, { body, signal });
  }
  status(uploadId: string, signal?: AbortSignal) {
    return this.call<UploadStatusResponse>('GET', `/v1/uploads/${uploadId}`, { signal });
  }
  complete(uploadId: string, idempotencyKey: string, signal?: AbortSignal) {
    return this.call<CompleteResponse>('POST', `/v1/uploads/${uploadId}/complete`, {
      body: {},
      idempotencyKey,
      signal,
      timeoutMs: Math.max(this.options.timeoutMs, COMPLETE_TIMEOUT_MS),
    });
  }
  abort(uploadId: string, signal?: AbortSignal) {
    return this.call<null>('DELETE', `/v1/uploads/${uploadId}`, { signal });
  }
  list(query: { status?: UploadStatus; limit?: number; cursor?: string } = {}, signal?: AbortSignal) {
    const q = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]));
    const qs = q.toString();
    return this.call<{ uploads: UploadSummary[]; nextCursor: string | null }>(
      'GET',
      `/v1/uploads${qs ? `?${qs}` : ''}`,
      { signal },
    );
  }
  manifest(fileId: string, signal?: AbortSignal) {
    return this.call<FileManifest>('GET', `/v1/files/${fileId}`, { signal });
  }

  /** One JSON call, retried per the policy (every call here is safe to repeat: GET, PATCH, or keyed POST/DELETE). */
  async call<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const counts = { retries: 0, throttles: 0 };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once<T>(method, path, opts);
      } catch (err) {
        if (opts.retry === false || opts.signal?.aborted) throw err;
        counts[budgetOf(err, this.options.retry)]++;
        const d = retryDecision(err, counts, this.options.retry);
        if (d.action !== 'retry') throw err;
        if (d.throttled) this.options.onThrottle?.(d.delayMs);
        this.options.onRetry?.({ method, path, attempt, delayMs: d.delayMs, reason: d.reason });
        await sleep(d.delayMs, opts.signal);
      }
    }
  }

  async #once<T>(method: string, path: string, opts: CallOptions): Promise<T> {
    const headers: Record<string, string> = { authorization: this.authorization, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    const timeout = new AbortController();
    const ms = opts.timeoutMs ?? this.options.timeoutMs;
    const timer = setTimeout(
      () => timeout.abort(new TimeoutError(ms, `${method} ${path}: no answer within ${ms} ms`)),
      ms,
    );
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout.signal]) : timeout.signal;
    let res: Response;
    let text: string;
    try {
      res = await this.options.fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal,
      });
      text = await res.text();
    } catch (err) {
      if (timeout.signal.aborted) throw timeout.signal.reason;
      if (opts.signal?.aborted) throw new AbortError(opts.signal.reason);
      throw new NetworkError(`${method} ${path}: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
    if (!res.ok) {
      const h: Record<string, string> = {};
      res.headers.forEach((v, k) => {
        h[k] = v;
      });
      throw httpErrorFrom({ status: res.status, headers: h, body: new TextEncoder().encode(text) }, 'coordinator');
    }
    return (text ? JSON.parse(text) : null) as T;
  }
}

/** Waits `ms`, or rejects with `AbortError` when `signal` fires first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError(signal.reason));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(new AbortError(signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
