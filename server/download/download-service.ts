import type { Readable } from 'node:stream';
import type { UploadRow } from '../../db/schema.ts';
import type { UploadsRepository } from '../../db/uploads-repository.ts';
import { ApiError } from '../http/errors.ts';
import type { Metrics } from '../metrics.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { chunkRange } from '../uploads/chunk-plan.ts';
import { prefetchStream, readBody, segmentRange } from './prefetch.ts';

export interface DownloadServiceOptions {
  repo: UploadsRepository;
  store: ObjectStore;
  metrics: Metrics;
  presignTtlSeconds: number;
  /** Ranged GETs in flight per streamed download. */
  prefetchWindow: number;
  /** Largest segment one ranged GET fetches (also bounded by the file's chunk size). */
  segmentSize: number;
}

/** Download side of the protocol: manifests for parallel clients, and streaming through the coordinator. */
export class DownloadService {
  readonly #o: DownloadServiceOptions;

  constructor(options: DownloadServiceOptions) {
    this.#o = options;
  }

  /** A COMPLETED upload of the caller's; anything else is 404 (never revealing another principal's files). */
  async file(principal: string, fileId: string): Promise<UploadRow> {
    const upload = await this.#o.repo.get(fileId, principal);
    if (upload?.status !== 'COMPLETED' || !upload.etag) throw new ApiError('file_not_found');
    return upload;
  }

  /**
   * The manifest of a parallel download: one entry per upload chunk (so per-chunk SHA-256
   * recorded at upload time can be checked), each with a presigned GET for its byte range;
   * the client sends `Range` and `If-Match: etag`, so a replaced object fails instead of
   * yielding a mix.
   */
  async manifest(principal: string, fileId: string) {
    const u = await this.file(principal, fileId);
    const sha256 = new Map((await this.#o.repo.listChunks(u.id)).map((c) => [c.chunkIndex, c.sha256]));
    const plan = planOf(u);
    const chunks = [];
    let expiresAt: Date | null = null;
    for (let i = 0; i < (u.fileSize === 0 ? 0 : u.totalChunks); i++) {
      const { start, end } = chunkRange(plan, u.fileSize, i);
      const req = await this.#o.store.presignGetObject({
        key: u.objectKey,
        range: { start, end },
        expiresInSeconds: this.#o.presignTtlSeconds,
      });
      expiresAt ??= req.expiresAt;
      const hash = sha256.get(i);
      chunks.push({
        chunkIndex: i,
        start,
        end,
        ...(hash ? { sha256: hash } : {}),
        url: req.url,
        headers: { ...req.headers, 'if-match': u.etag! },
      });
    }
    return {
      fileId: u.id,
      fileName: u.fileName,
      size: u.fileSize,
      contentType: u.contentType,
      etag: u.etag!,
      ...(u.checksumSha256 ? { checksumSha256: u.checksumSha256 } : {}),
      chunkSize: u.chunkSize,
      chunks,
      expiresAt: (expiresAt ?? new Date(Date.now() + this.#o.presignTtlSeconds * 1000)).toISOString(),
    };
  }

  /** The bytes [start, end] of the file, fetched with a bounded prefetch window of ranged GETs. */
  stream(u: UploadRow, start: number, end: number, signal: AbortSignal): Readable {
    const segmentSize = Math.max(1, Math.min(this.#o.segmentSize, u.chunkSize));
    const { store, metrics } = this.#o;
    return prefetchStream({
      segments: end >= start ? segmentRange(start, end, segmentSize) : [],
      window: this.#o.prefetchWindow,
      signal,
      onInflight: (d) => {
        metrics.inflight.downloads += d;
      },
      fetch: async (range, segSignal) => {
        const { body } = await store.getObject({ key: u.objectKey, range, ifMatch: u.etag! }, segSignal);
        return readBody(body, range.end - range.start + 1, segSignal);
      },
    });
  }
}

function planOf(u: UploadRow) {
  return {
    chunkSize: u.chunkSize,
    totalChunks: u.totalChunks,
    lastChunkSize: u.fileSize - (u.totalChunks - 1) * u.chunkSize,
  };
}
