/** The Conveyor client SDK for browsers (bundled by `npm run build:browser` to dist/conveyor.browser.js). */
export type { CompleteResponse, FileManifest, UploadStatus, UploadStatusResponse, UploadSummary } from './api.ts';
export { ConveyorClient, wasmHashes } from './browser-client.ts';
export type { ConveyorClientOptions } from './client-core.ts';
export type { ConcurrencyChange, ConcurrencyOptions, ConcurrencySnapshot } from './concurrency.ts';
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
export { LocalStorageResumeStore, MemoryResumeStore } from './resume-store.ts';
export type { RetryPolicy } from './retry.ts';
export { defaultRetryPolicy } from './retry.ts';
export type { Progress, Transfer } from './transfer.ts';
export { FetchTransport } from './transport.ts';
export type { TransportMode, UploadOptions, UploadResult } from './uploader.ts';
