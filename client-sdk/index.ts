/** The Conveyor client SDK for Node. Browsers: `browser.ts` (bundled to dist/conveyor.browser.js). */
export type { CompleteResponse, FileManifest, UploadStatus, UploadStatusResponse, UploadSummary } from './api.ts';
export { ApiClient } from './api.ts';
export { chunkCount, chunkRange, pickChunkSize } from './chunk-size.ts';
export type { ConveyorClientOptions } from './client-core.ts';
export type { ConcurrencyChange, ConcurrencyOptions, ConcurrencySnapshot } from './concurrency.ts';
export { AdaptiveConcurrency, defaultConcurrency } from './concurrency.ts';
export type { DownloadOptions, DownloadResult } from './downloader.ts';
export {
  AbortError,
  ConveyorError,
  FileChangedError,
  HTTPError,
  IntegrityError,
  NetworkError,
  TimeoutError,
} from './errors.ts';
export type { NodeClientOptions, NodeDownloadDestination, NodeUploadSource } from './node-client.ts';
export { ConveyorClient } from './node-client.ts';
export { FileResumeStore } from './node-platform.ts';
export { NodeHttpTransport } from './node-transport.ts';
export type { ResumeStore } from './resume-store.ts';
export { MemoryResumeStore } from './resume-store.ts';
export type { RetryDecision, RetryPolicy } from './retry.ts';
export { backoffDelay, defaultRetryPolicy, parseRetryAfter, retryDecision } from './retry.ts';
export type { Progress, RetryEvent, Transfer, TransferEvents } from './transfer.ts';
export type { BulkRequest, BulkResponse, BulkTransport } from './transport.ts';
export { FetchTransport } from './transport.ts';
export type { TransportMode, UploadOptions, UploadResult } from './uploader.ts';
