import { ApiClient, type UploadStatus } from './api.ts';
import type { ChunkHasher } from './chunk-hasher.ts';
import type { TransferContext } from './context.ts';
import { type DownloadOptions, type DownloadResult, runDownload } from './downloader.ts';
import type { HashProvider } from './hashing.ts';
import type { ResumeStore } from './resume-store.ts';
import { type RetryPolicy, resolveRetryPolicy } from './retry.ts';
import type { DownloadSink } from './sinks.ts';
import type { ChunkSource } from './sources.ts';
import { Transfer } from './transfer.ts';
import type { BulkTransport } from './transport.ts';
import { runUpload, type UploadOptions, type UploadResult } from './uploader.ts';

/** Options of `new ConveyorClient(...)`, shared by Node and browsers. */
export interface ConveyorClientOptions {
  /** The coordinator's base URL, e.g. `https://conveyor.example.com`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  /** Used for the JSON API calls. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** Moves chunk bytes. @default node:http keep-alive agents in Node, fetch in browsers */
  transport?: BulkTransport;
  /** The retry policy (see `defaultRetryPolicy`). @default defaultRetryPolicy */
  retry?: Partial<RetryPolicy>;
  /** A chunk request with no byte moving for this long fails with `TimeoutError` (and is retried). @default 60_000 */
  requestTimeoutMs?: number;
  /** Total time of one JSON API call. @default 30_000 */
  apiTimeoutMs?: number;
  /** Where resume state is kept; `false`: nowhere. @default Node: `FileResumeStore(stateDir)`; browsers: localStorage */
  resumeStore?: ResumeStore | false;
  /** Rewrites every presigned store URL before use (a local proxy; tests). @default identity */
  urlRewrite?: (url: string) => string;
  /**
   * Threads that read and hash upload chunks (`worker_threads` in Node, Web Workers in browsers);
   * 0 does it in this thread. @default Node: `os.availableParallelism() - 1` (1 to 8); browsers: `navigator.hardwareConcurrency` (at most 4)
   */
  hashWorkers?: number;
  /** Bytes of chunks read ahead of their PUTs, across all of this client's uploads. @default 256 MiB */
  maxInflightBytes?: number;
}

/** What differs between Node and browsers. */
export interface Platform<Src, Dest> {
  runtime: 'node' | 'browser';
  hashes: HashProvider;
  /** Reads and hashes upload chunks, in threads where the platform has them. */
  hasher: ChunkHasher;
  bulk: BulkTransport;
  resumeStore: ResumeStore | undefined;
  openSource(source: Src): Promise<ChunkSource>;
  openSink(destination: Dest): Promise<DownloadSink>;
}

/**
 * The client. Node and browser builds subclass it with their platform (node-client.ts,
 * browser-client.ts); everything the transfers do is here and in uploader/downloader.
 */
export class ConveyorClientCore<Src, Dest> {
  readonly api: ApiClient;
  readonly retry: RetryPolicy;
  readonly #ctx: TransferContext;
  readonly #platform: Platform<Src, Dest>;

  constructor(options: ConveyorClientOptions, platform: Platform<Src, Dest>) {
    if (!options || typeof options.baseUrl !== 'string' || !/^https?:\/\//.test(options.baseUrl)) {
      throw new TypeError(`baseUrl must be an http(s) URL, got ${JSON.stringify(options?.baseUrl)}`);
    }
    if (typeof options.apiKey !== 'string' || options.apiKey === '') throw new TypeError('apiKey is required');
    this.retry = resolveRetryPolicy(options.retry);
    this.#platform = platform;
    this.api = new ApiClient({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      retry: this.retry,
      timeoutMs: options.apiTimeoutMs ?? 30_000,
    });
    this.#ctx = {
      api: this.api,
      bulk: options.transport ?? platform.bulk,
      hashes: platform.hashes,
      hasher: platform.hasher,
      resumeStore: options.resumeStore === false ? undefined : (options.resumeStore ?? platform.resumeStore),
      retry: this.retry,
      runtime: platform.runtime,
      urlRewrite: options.urlRewrite ?? ((u) => u),
      requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    };
  }

  /**
   * Uploads `source`. Returns at once: `await` the `Transfer` for the `UploadResult`, or use its
   * `pause()`, `resume()`, `abort()` and `on('progress', …)`. An interrupted upload of the same
   * file (same path, size, mtime, first and last MiB) resumes: only the missing chunks are sent.
   */
  upload(source: Src, options: UploadOptions = {}): Transfer<UploadResult> {
    return new Transfer<UploadResult>(async (t, signal) => {
      const src = await this.#platform.openSource(source);
      try {
        return await runUpload(this.#ctx, src, options, t, signal);
      } finally {
        await src.close();
      }
    }, options.signal);
  }

  /** Downloads file `fileId` (an upload's `fileId`) into `destination` with parallel ranged GETs. */
  download(fileId: string, destination: Dest, options: DownloadOptions = {}): Transfer<DownloadResult> {
    return new Transfer<DownloadResult>(async (t, signal) => {
      const sink = await this.#platform.openSink(destination);
      return runDownload(this.#ctx, fileId, sink, options, t, signal);
    }, options.signal);
  }

  /** The upload's state and `missingChunks` (GET /v1/uploads/{id}). */
  status(uploadId: string, signal?: AbortSignal) {
    return this.api.status(uploadId, signal);
  }
  /** Aborts an upload on the server (its parts are discarded). */
  abortUpload(uploadId: string, signal?: AbortSignal) {
    return this.api.abort(uploadId, signal);
  }
  /** The caller's uploads, newest first. */
  list(query: { status?: UploadStatus; limit?: number; cursor?: string } = {}, signal?: AbortSignal) {
    return this.api.list(query, signal);
  }
  /** The download manifest of a completed file. */
  manifest(fileId: string, signal?: AbortSignal) {
    return this.api.manifest(fileId, signal);
  }
  /** Frees the transport's sockets (a process can then exit without waiting for keep-alive timeouts). */
  close(): void {
    this.#ctx.bulk.close?.();
    this.#ctx.hasher.close();
  }
}
