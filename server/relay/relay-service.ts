import type { Readable } from 'node:stream';
import { ApiError } from '../http/errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { isObjectStoreError } from '../storage/errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import type { Limits } from '../uploads/limits.ts';
import { assertOpen, type UploadService } from '../uploads/upload-service.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { BodyLengthError, type ByteBudget, type HeldBody, receiveChunk } from './chunk-body.ts';
import { defaultRelayHashThreads, RelayHashPool } from './hash-pool.ts';

export interface RelayServiceOptions {
  uploads: UploadService;
  store: ObjectStore;
  limits: Pick<Limits, 'acquireInflight' | 'releaseInflight' | 'runTask'>;
  metrics: Metrics;
  log: Logger;
  /** Retries of UploadPart after the first attempt (MAX_RETRIES). */
  maxRetries: number;
  /** Memory shared by chunks held for upload; larger ones are spooled to disk. */
  budget: ByteBudget;
  spoolDir: string;
  retryBaseMs?: number;
  /** Threads verifying Content-MD5 (RELAY_HASH_THREADS); 0: the request thread. @default 1 per core, at most 4 */
  hashThreads?: number;
}

export interface RelayInput {
  principal: string;
  uploadId: string;
  chunkIndex: number;
  /** The declared Content-Length, or undefined when absent. */
  contentLength: number | undefined;
  /** The Content-MD5 header, if sent. */
  contentMd5: string | undefined;
  body: Readable;
  signal: AbortSignal;
}

/** Store errors that no retry can fix. */
const PERMANENT = ['bad_digest', 'no_such_upload', 'invalid_part', 'entity_too_small', 'not_found'] as const;

/**
 * The relay path (API.md `PUT /v1/uploads/{id}/chunks/{i}`): for clients that cannot reach S3.
 * Everything that can refuse the chunk — ownership, index, exact Content-Length, inflight
 * limits, a full task queue — is checked before a byte of the body is read. The body is then
 * received into a budgeted buffer or a spool file, its MD5 computed by the hashing threads
 * (`RelayHashPool`: the request thread only copies bytes) and checked against Content-MD5, and it
 * is written to the store by a worker of the bounded pool, with retries and full-jitter backoff.
 */
export class RelayService {
  readonly #o: RelayServiceOptions;
  /** Where relayed chunks are hashed; its queue depth and busy threads are in the metrics. */
  readonly hashing: RelayHashPool;

  constructor(options: RelayServiceOptions) {
    this.#o = options;
    this.hashing = new RelayHashPool(options.hashThreads ?? defaultRelayHashThreads());
    options.metrics.relayHashPool.source = this.hashing;
  }

  /** Ends the hashing threads. */
  async close(): Promise<void> {
    if (this.#o.metrics.relayHashPool.source === this.hashing) this.#o.metrics.relayHashPool.source = undefined;
    await this.hashing.close();
  }

  async relay(input: RelayInput): Promise<{ chunkIndex: number; etag: string; size: number }> {
    const { uploads, limits } = this.#o;
    const upload = await uploads.get(input.principal, input.uploadId);
    assertOpen(upload);
    const size = uploads.expectedSize(upload, input.chunkIndex);
    if (input.contentLength === undefined) {
      throw new ApiError('content_length_mismatch', 'Content-Length is required.', { expectedSize: size });
    }
    if (input.contentLength !== size) {
      throw new ApiError(
        'content_length_mismatch',
        `Chunk ${input.chunkIndex} is ${size} bytes; Content-Length is ${input.contentLength}.`,
        { expectedSize: size },
      );
    }
    if (input.contentMd5 !== undefined && !/^[A-Za-z0-9+/]{22}==$/.test(input.contentMd5)) {
      throw new ApiError('invalid_request', 'Content-MD5 must be the base64 of 16 bytes.');
    }

    const started = process.hrtime.bigint();
    await limits.acquireInflight(upload.principal, upload.id, 1);
    try {
      // The task queue refuses at once when full (429 before the body is read); while this task
      // waits for a worker, the body stays unread in the socket: TCP backpressure, not memory.
      const { etag, retries } = await limits.runTask(async () => {
        const held = await this.#receive(input, size);
        try {
          return await this.#store(upload.objectKey, upload.s3UploadId!, input.chunkIndex + 1, held, input.signal);
        } finally {
          await held.release();
        }
      });
      await uploads.recordStored(upload, input.chunkIndex, { etag, size, retries }, 'relay');
      this.#o.metrics.chunkUploadDuration.observe({ path: 'relay' }, Number(process.hrtime.bigint() - started) / 1e9);
      return { chunkIndex: input.chunkIndex, etag, size };
    } finally {
      await limits.releaseInflight(upload.principal, upload.id, 1);
    }
  }

  async #receive(input: RelayInput, size: number): Promise<HeldBody> {
    let held: HeldBody;
    try {
      held = await receiveChunk(
        input.body as AsyncIterable<Buffer>,
        size,
        this.#o.budget,
        this.#o.spoolDir,
        this.hashing,
      );
    } catch (err) {
      if (err instanceof BodyLengthError) {
        throw new ApiError('content_length_mismatch', `The body was not ${size} bytes long.`, { expectedSize: size });
      }
      throw new ApiError('invalid_request', 'The request body could not be read to the end.');
    }
    if (input.contentMd5 !== undefined && held.md5 !== input.contentMd5) {
      await held.release();
      throw new ApiError('bad_digest', 'The body does not match Content-MD5.');
    }
    return held;
  }

  /** UploadPart with up to MAX_RETRIES retries on transient failures; the MD5 makes the store verify the bytes too. */
  async #store(key: string, uploadId: string, partNumber: number, held: HeldBody, signal: AbortSignal) {
    const { store, maxRetries, metrics, log } = this.#o;
    for (let attempt = 0; ; attempt++) {
      try {
        const { etag } = await store.uploadPart(
          { key, uploadId, partNumber, body: held.open(), contentLength: held.size, md5: held.md5 },
          signal,
        );
        return { etag, retries: attempt };
      } catch (err) {
        const permanent = PERMANENT.some((code) => isObjectStoreError(err, code));
        if (permanent || attempt >= maxRetries || signal.aborted) {
          // Counted here only when giving up; a success counts its retries when it is recorded.
          metrics.chunkUploadFailures.inc({ path: 'relay' }, attempt + 1);
          if (attempt > 0) metrics.retries.inc({ path: 'relay' }, attempt);
          if (isObjectStoreError(err, 'no_such_upload')) throw new ApiError('upload_not_in_progress');
          if (permanent) throw err;
          throw new ApiError('object_store_unavailable', undefined, { attempts: attempt + 1 }, { 'Retry-After': '2' });
        }
        log.warn({ err, partNumber, attempt }, 'relay UploadPart failed; retrying');
        await sleep(backoffDelay(attempt, this.#o.retryBaseMs ?? 100), signal);
      }
    }
  }
}
