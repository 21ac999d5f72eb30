import type { ApiClient } from './api.ts';
import type { ChunkHasher } from './chunk-hasher.ts';
import type { HashProvider } from './hashing.ts';
import type { ResumeStore } from './resume-store.ts';
import type { RetryPolicy } from './retry.ts';
import type { BulkTransport } from './transport.ts';

/** What the uploader and downloader get from the client: the platform's pieces and the shared settings. */
export interface TransferContext {
  api: ApiClient;
  bulk: BulkTransport;
  hashes: HashProvider;
  /** Reads and hashes upload chunks (in worker threads where the platform has them). */
  hasher: ChunkHasher;
  /** Undefined: nothing is persisted (no resume across runs). */
  resumeStore: ResumeStore | undefined;
  retry: RetryPolicy;
  runtime: 'node' | 'browser';
  /** Applied to every presigned store URL before use (a proxy, a test's fault injector). */
  urlRewrite: (url: string) => string;
  /** Idle timeout of a chunk request. */
  requestTimeoutMs: number;
}
