import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets (seconds) fine enough at the low end for p95/p99 of control calls. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Chunk transfers take seconds, not milliseconds. */
const TRANSFER_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300];

/**
 * Every metric Conveyor exports, registered in one place. The names in API.md are fixed
 * by the specification: add more, never rename these. One `Metrics` per app (tests build
 * several apps in one process, so nothing is registered globally).
 */
export function createMetrics() {
  const registry = new Registry();
  /** What `inflight_chunks` adds up: upload slots held (from the limits) and download segments being fetched. */
  const inflight = { uploads: 0, downloads: 0 };
  /** The relay's hashing threads (set by the RelayService). */
  const relayHashPool: { source: { queued: number; busy: number; threads: number } | undefined } = {
    source: undefined,
  };
  collectDefaultMetrics({ register: registry });
  const r = [registry];
  return {
    registry,
    wholeFileVerifications: new Counter({
      name: 'whole_file_verifications_total',
      help: 'Whole-file SHA-256 checks at completion, by method (read-back: the object was read and hashed; parts: every part ETag matched its declared MD5)',
      labelNames: ['method'] as const,
      registers: r,
    }),
    chunksUploaded: new Counter({
      name: 'chunks_uploaded_total',
      help: 'Chunks stored (reported direct uploads and relayed chunks)',
      labelNames: ['path'] as const,
      registers: r,
    }),
    bytesUploaded: new Counter({
      name: 'bytes_uploaded_total',
      help: 'Bytes of chunks stored',
      labelNames: ['path'] as const,
      registers: r,
    }),
    chunkUploadFailures: new Counter({
      name: 'chunk_upload_failures_total',
      help: 'Failed chunk upload attempts (reported by clients or seen on the relay path)',
      labelNames: ['path'] as const,
      registers: r,
    }),
    retries: new Counter({
      name: 'retries_total',
      help: 'Retried chunk uploads',
      labelNames: ['path'] as const,
      registers: r,
    }),
    taskQueueDepth: new Gauge({ name: 'task_queue_depth', help: 'Tasks waiting for a server worker', registers: r }),
    taskQueueLimit: new Gauge({ name: 'task_queue_limit', help: 'Capacity of the server task queue', registers: r }),
    inflight,
    inflightChunks: new Gauge({
      name: 'inflight_chunks',
      help: 'Upload chunks holding a slot (presigned or being relayed) plus download segments being fetched',
      registers: r,
      collect() {
        this.set(inflight.uploads + inflight.downloads);
      },
    }),
    throttledRequests: new Counter({
      name: 'throttled_requests_total',
      help: 'Requests answered 429, by the limit that was hit',
      labelNames: ['limit'] as const,
      registers: r,
    }),
    quotaRefusals: new Counter({
      name: 'quota_refusals_total',
      help: 'Uploads refused 403 quota_exceeded, by the quota that was hit',
      labelNames: ['quota'] as const,
      registers: r,
    }),
    incompleteUploads: new Gauge({
      name: 'incomplete_uploads',
      help: 'Uploads not yet completed, aborted or failed (refreshed by the sweeper)',
      registers: r,
    }),
    incompleteUploadBytes: new Gauge({
      name: 'incomplete_upload_bytes',
      help: 'Declared bytes of incomplete uploads (refreshed by the sweeper)',
      registers: r,
    }),
    workerCount: new Gauge({ name: 'worker_count', help: 'Current size of the server worker pool', registers: r }),
    workerBusy: new Gauge({ name: 'worker_busy_count', help: 'Server workers currently busy', registers: r }),
    relayHashPool,
    relayHashQueueDepth: new Gauge({
      name: 'relay_hash_queue_depth',
      help: 'Relayed chunks waiting for a hashing thread (Content-MD5 verification)',
      registers: r,
      collect() {
        this.set(relayHashPool.source?.queued ?? 0);
      },
    }),
    relayHashBusy: new Gauge({
      name: 'relay_hash_busy_count',
      help: 'Hashing threads busy with a relayed chunk',
      registers: r,
      collect() {
        this.set(relayHashPool.source?.busy ?? 0);
      },
    }),
    relayHashThreads: new Gauge({
      name: 'relay_hash_threads',
      help: 'Hashing threads at most (RELAY_HASH_THREADS; 0: hashed in the request thread)',
      registers: r,
      collect() {
        this.set(relayHashPool.source?.threads ?? 0);
      },
    }),
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by route template',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
    chunkUploadDuration: new Histogram({
      name: 'chunk_upload_duration_seconds',
      help: 'Time to store one chunk: relay = through this server, direct = presign to report',
      labelNames: ['path'] as const,
      buckets: TRANSFER_BUCKETS,
      registers: r,
    }),
    objectStoreRequestDuration: new Histogram({
      name: 'object_store_request_duration_seconds',
      help: 'Latency of object-store calls by operation',
      labelNames: ['operation', 'outcome'] as const,
      buckets: LATENCY_BUCKETS,
      registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
