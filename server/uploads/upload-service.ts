import { createHash, randomUUID } from 'node:crypto';
import type { Quota, QuotaUsage } from '../../db/principals-repository.ts';
import type { UploadEncryption, UploadRow, UploadStatus } from '../../db/schema.ts';
import type { UploadsRepository } from '../../db/uploads-repository.ts';
import { ApiError } from '../http/errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { isObjectStoreError } from '../storage/errors.ts';
import type { ObjectStore } from '../storage/object-store.ts';
import { ChunkPlanError, expectedChunkSize, planChunks } from './chunk-plan.ts';
import { isLimited, type Quotas, UNLIMITED } from './quotas.ts';

/** What the service needs from the backpressure layer (server/uploads/limits.ts). */
export interface UploadLimits {
  acquireInflight(principal: string, uploadId: string, n: number): Promise<void>;
  releaseInflight(principal: string, uploadId: string, n: number): Promise<void>;
  runTask<T>(fn: () => Promise<T>): Promise<T>;
}

export interface UploadServiceOptions {
  repo: UploadsRepository;
  store: ObjectStore;
  limits: UploadLimits;
  metrics: Metrics;
  log: Logger;
  defaultChunkSize: number;
  maxFileSize: number;
  presignTtlSeconds: number;
  uploadTtlHours: number;
  /** A presign batch may take at most this many new slots (MAX_INFLIGHT_PER_UPLOAD). */
  maxInflightPerUpload: number;
  /** WHOLE_FILE_VERIFY: how a declared whole-file SHA-256 is checked at completion. @default 'read-back' */
  wholeFileVerify?: 'read-back' | 'parts';
  /** Per-principal quotas (server/uploads/quotas.ts). @default none */
  quotas?: Quotas;
  /** Encryption of uploads that ask for none (SSE_DEFAULT). @default the bucket's default */
  defaultEncryption?: UploadEncryption;
  /** Prefix of object keys (S3_PREFIX is applied by the store itself). @default 'uploads/' */
  keyPrefix?: string;
  now?: () => number;
}

export interface InitInput {
  fileName: string;
  fileSize: number;
  contentType?: string | undefined;
  chunkSize?: number | undefined;
  checksumSha256?: string | undefined;
  metadata?: Record<string, string> | undefined;
  encryption?: UploadEncryption | undefined;
}

export interface PresignChunkInput {
  chunkIndex: number;
  md5?: string | undefined;
  sha256?: string | undefined;
}

export interface ReportInput {
  etag: string;
  size: number;
  md5?: string | undefined;
  sha256?: string | undefined;
  attempts?: number | undefined;
}

const OPEN: readonly UploadStatus[] = ['INITIATED', 'IN_PROGRESS'];

/**
 * The upload protocol (API.md): init, presign, report, status, complete, abort. Every
 * state change is a compare-and-set in PostgreSQL, so racing requests — on one coordinator
 * or several — resolve the same way. Routes stay thin: they validate and call this.
 */
export class UploadService {
  readonly #o: UploadServiceOptions;
  readonly #now: () => number;

  constructor(options: UploadServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async init(principal: string, input: InitInput): Promise<UploadRow> {
    const plan = this.#plan(input);
    // Checked before the store is called, so a refused init leaves nothing anywhere; checked
    // again, under the principal's lock, when the row is written (see createWithinQuota).
    const quotas = this.#o.quotas;
    const quota = quotas ? await quotas.of(principal) : UNLIMITED;
    const limited = quotas !== undefined && isLimited(quota);
    const check = (usage: QuotaUsage) => quotas?.check(quota, usage, input.fileSize);
    if (limited) check(await quotas.usage(principal));
    const id = randomUUID();
    const objectKey = `${this.#o.keyPrefix ?? 'uploads/'}${id}`;
    const encryption = input.encryption ?? this.#o.defaultEncryption;
    let s3UploadId: string;
    try {
      ({ uploadId: s3UploadId } = await this.#o.limits.runTask(() =>
        this.#o.store.createMultipartUpload({
          key: objectKey,
          ...(input.contentType ? { contentType: input.contentType } : {}),
          ...(encryption ? { encryption } : {}),
        }),
      ));
    } catch (err) {
      if (isObjectStoreError(err, 'encryption_unsupported')) {
        throw new ApiError('encryption_unsupported', undefined, { encryption, reason: err.message });
      }
      throw err;
    }
    try {
      const create = (row: Parameters<UploadsRepository['create']>[0]) =>
        limited ? this.#o.repo.createWithinQuota(row, check) : this.#o.repo.create(row);
      return await create({
        id,
        principal,
        fileName: input.fileName,
        fileSize: input.fileSize,
        chunkSize: plan.chunkSize,
        totalChunks: plan.totalChunks,
        contentType: input.contentType ?? 'application/octet-stream',
        objectKey,
        s3UploadId,
        checksumSha256: input.checksumSha256 ?? null,
        metadata: input.metadata ?? {},
        encryption: encryption ?? null,
        expiresAt: new Date(this.#now() + this.#o.uploadTtlHours * 3600_000),
      });
    } catch (err) {
      // Never leave a multipart upload in the store that no row points at: it would cost storage forever.
      await this.#o.store.abortMultipartUpload({ key: objectKey, uploadId: s3UploadId }).catch(() => {});
      throw err;
    }
  }

  /** The principal's effective quota (`null` = unlimited) and what it uses now (`GET /v1/usage`). */
  async usage(principal: string): Promise<{ quota: Quota; usage: QuotaUsage }> {
    const q = this.#o.quotas;
    if (!q) return { quota: UNLIMITED, usage: { concurrentUploads: 0, bytesInFlight: 0, totalBytes: 0 } };
    return { quota: await q.of(principal), usage: await q.usage(principal) };
  }

  /** The caller's upload; another principal's is indistinguishable from a missing one (404). */
  async get(principal: string, uploadId: string): Promise<UploadRow> {
    const upload = await this.#o.repo.get(uploadId, principal);
    if (!upload) throw new ApiError('upload_not_found');
    return upload;
  }

  #plan(input: InitInput) {
    try {
      return planChunks({
        fileSize: input.fileSize,
        ...(input.chunkSize !== undefined ? { requestedChunkSize: input.chunkSize } : {}),
        defaultChunkSize: this.#o.defaultChunkSize,
        maxFileSize: this.#o.maxFileSize,
      });
    } catch (err) {
      if (err instanceof ChunkPlanError) throw new ApiError(err.code, err.message);
      throw err;
    }
  }

  /** The exact byte count of a chunk; `422 chunk_index_out_of_range` outside the upload. */
  expectedSize(upload: UploadRow, chunkIndex: number): number {
    if (!Number.isInteger(chunkIndex) || chunkIndex < 0 || chunkIndex >= upload.totalChunks) {
      throw new ApiError('chunk_index_out_of_range', undefined, { chunkIndex, totalChunks: upload.totalChunks });
    }
    const plan = { chunkSize: upload.chunkSize, totalChunks: upload.totalChunks };
    return expectedChunkSize(
      { ...plan, lastChunkSize: upload.fileSize - (upload.totalChunks - 1) * upload.chunkSize },
      upload.fileSize,
      chunkIndex,
    );
  }

  /**
   * Presigned part URLs for a batch of chunks. A chunk holds one inflight slot from its
   * first presign until it is reported, its lease lapses, or the upload ends; presigning it
   * again (a refresh) takes no second slot.
   */
  async presign(principal: string, uploadId: string, chunks: readonly PresignChunkInput[]) {
    return (await this.presignBatch(principal, uploadId, chunks)).chunks;
  }

  /** `presign`, plus the bytes the batch covers (for the audit log). */
  async presignBatch(principal: string, uploadId: string, chunks: readonly PresignChunkInput[]) {
    const upload = await this.get(principal, uploadId);
    assertOpen(upload);
    const sizes = chunks.map((c) => this.expectedSize(upload, c.chunkIndex));
    if (new Set(chunks.map((c) => c.chunkIndex)).size !== chunks.length) {
      throw new ApiError('invalid_request', 'chunks: each chunkIndex may appear once per batch.');
    }

    return this.#o.repo.locked(upload.id, async (repo) => {
      // Only the batch's rows: reading all of them made each call O(chunks) and an upload O(chunks²).
      const rows = await repo.listChunksAt(
        upload.id,
        chunks.map((c) => c.chunkIndex),
      );
      const current = new Map(rows.map((c) => [c.chunkIndex, c.status]));
      const newSlots = chunks.filter((c) => {
        const status = current.get(c.chunkIndex);
        return status !== 'PRESIGNED' && status !== 'UPLOADED';
      }).length;
      if (newSlots > this.#o.maxInflightPerUpload) {
        throw new ApiError(
          'invalid_request',
          `chunks: at most ${this.#o.maxInflightPerUpload} new chunks per batch (MAX_INFLIGHT_PER_UPLOAD).`,
          { maxNewChunks: this.#o.maxInflightPerUpload },
        );
      }
      if (newSlots > 0) await this.#o.limits.acquireInflight(principal, upload.id, newSlots);
      try {
        const urls = await this.#o.store.presignUploadParts({
          key: upload.objectKey,
          uploadId: upload.s3UploadId!,
          expiresInSeconds: this.#o.presignTtlSeconds,
          parts: chunks.map((c, i) => ({
            partNumber: c.chunkIndex + 1,
            contentLength: sizes[i]!,
            ...(c.md5 ? { md5: c.md5 } : {}),
            ...(c.sha256 ? { sha256: c.sha256 } : {}),
          })),
        });
        const leaseUntil = urls[0]?.expiresAt ?? new Date(this.#now() + this.#o.presignTtlSeconds * 1000);
        await repo.leaseChunks(
          upload.id,
          chunks.map((c, i) => ({
            chunkIndex: c.chunkIndex,
            s3Key: upload.objectKey,
            size: sizes[i]!,
            md5: c.md5 ?? null,
            sha256: c.sha256 ?? null,
          })),
          leaseUntil,
        );
        if (upload.status === 'INITIATED') await repo.transition(upload.id, ['INITIATED'], 'IN_PROGRESS');
        const presigned = chunks.map((c, i) => ({
          chunkIndex: c.chunkIndex,
          url: urls[i]!.url,
          method: urls[i]!.method,
          headers: urls[i]!.headers,
          expiresAt: urls[i]!.expiresAt.toISOString(),
        }));
        return { chunks: presigned, bytes: sizes.reduce((a, b) => a + b, 0) };
      } catch (err) {
        if (newSlots > 0) await this.#o.limits.releaseInflight(principal, upload.id, newSlots);
        throw err;
      }
    });
  }

  /**
   * Records a chunk the client PUT directly to S3 (idempotent). Frees the chunk's inflight
   * slot if it held one; `attempts - 1` counts as retries and failed attempts.
   */
  async report(principal: string, uploadId: string, chunkIndex: number, input: ReportInput): Promise<void> {
    const upload = await this.get(principal, uploadId);
    const size = this.expectedSize(upload, chunkIndex);
    if (input.size !== size) {
      throw new ApiError('invalid_request', `size: chunk ${chunkIndex} is ${size} bytes, not ${input.size}.`, {
        expectedSize: size,
      });
    }
    const retries = Math.max(0, (input.attempts ?? 1) - 1);
    const { md5, sha256 } = input;
    await this.recordStored(upload, chunkIndex, { etag: input.etag, size, md5, sha256, retries }, 'direct');
  }

  /**
   * Records a chunk that is now in the store (reported direct upload, or relayed by this
   * server): upsert UPLOADED, free the slot its presign held, count it in the metrics.
   */
  async recordStored(
    upload: UploadRow,
    chunkIndex: number,
    stored: { etag: string; size: number; md5?: string | undefined; sha256?: string | undefined; retries: number },
    path: 'direct' | 'relay',
  ): Promise<void> {
    const etag = normaliseEtag(stored.etag);
    const before = await this.#o.repo.locked(upload.id, async (repo) => {
      const [prev] = await repo.listChunksAt(upload.id, [chunkIndex]);
      if (!OPEN.includes(upload.status)) {
        // A report repeated after completion is harmless when it says what was recorded.
        if (prev?.status === 'UPLOADED' && prev.etag === etag) return prev;
        assertOpen(upload);
      }
      await repo.markChunkUploaded(upload.id, {
        chunkIndex,
        s3Key: upload.objectKey,
        etag,
        size: stored.size,
        md5: stored.md5 ?? null,
        sha256: stored.sha256 ?? null,
        retries: stored.retries,
      });
      if (prev?.status === 'PRESIGNED') await this.#o.limits.releaseInflight(upload.principal, upload.id, 1);
      if (upload.status === 'INITIATED') await repo.transition(upload.id, ['INITIATED'], 'IN_PROGRESS');
      return prev;
    });
    const m = this.#o.metrics;
    if (before?.status !== 'UPLOADED') {
      m.chunksUploaded.inc({ path });
      m.bytesUploaded.inc({ path }, stored.size);
      // Direct: from the chunk's (last) presign to its report, the client's PUT plus its overheads.
      if (path === 'direct' && before?.status === 'PRESIGNED') {
        m.chunkUploadDuration.observe({ path }, (this.#now() - before.updatedAt.getTime()) / 1000);
      }
    }
    if (stored.retries > 0) {
      m.retries.inc({ path }, stored.retries);
      m.chunkUploadFailures.inc({ path }, stored.retries);
    }
  }

  /** Gives back the slots of an upload's outstanding leases (the upload ended, or they lapsed). */
  async endLeases(principal: string, uploadId: string, lapsedBefore?: Date): Promise<number> {
    return this.#o.repo.locked(uploadId, async (repo) => {
      const n = await repo.endLeases(uploadId, lapsedBefore);
      if (n > 0) await this.#o.limits.releaseInflight(principal, uploadId, n);
      return n;
    });
  }

  /**
   * Status with `missingChunks` reconciled against the store's ListParts: a part that is in
   * the store with the right size counts as uploaded even if never reported; a reported
   * chunk the store does not have counts as missing.
   */
  async status(principal: string, uploadId: string) {
    const upload = await this.get(principal, uploadId);
    let uploaded: Set<number>;
    if (OPEN.includes(upload.status) && upload.s3UploadId) {
      const parts = await this.#o.limits.runTask(() =>
        this.#o.store.listParts({ key: upload.objectKey, uploadId: upload.s3UploadId! }),
      );
      uploaded = new Set(
        parts
          .filter((p) => p.partNumber <= upload.totalChunks && p.size === this.expectedSize(upload, p.partNumber - 1))
          .map((p) => p.partNumber - 1),
      );
    } else if (upload.status === 'COMPLETED' || upload.status === 'COMPLETING') {
      uploaded = new Set(Array.from({ length: upload.totalChunks }, (_, i) => i));
    } else {
      uploaded = new Set();
    }
    const missingChunks: number[] = [];
    for (let i = 0; i < upload.totalChunks; i++) if (!uploaded.has(i)) missingChunks.push(i);
    return { upload, uploadedChunks: uploaded.size, missingChunks };
  }

  /**
   * Completes the upload. Single-flight through the database: the request whose
   * compare-and-set moves the upload to COMPLETING sends the one CompleteMultipartUpload;
   * the others wait for the outcome and return the same answer.
   */
  async complete(principal: string, uploadId: string): Promise<CompletedView> {
    const deadline = this.#now() + COMPLETE_WAIT_MS;
    for (;;) {
      const upload = await this.get(principal, uploadId);
      switch (upload.status) {
        case 'COMPLETED':
          return completedView(upload);
        case 'FAILED':
          throw new ApiError('checksum_mismatch', upload.failureReason ?? undefined);
        case 'ABORTED':
          assertOpen(upload);
          break;
        case 'INITIATED':
        case 'IN_PROGRESS': {
          const mine = await this.#o.repo.transition(upload.id, OPEN, 'COMPLETING');
          if (mine) return this.#finish(mine);
          break; // another request changed it first: look again
        }
        case 'COMPLETING': {
          // A coordinator that died while completing leaves COMPLETING behind; take it over once stale.
          const stale = new Date(this.#now() - STALE_COMPLETING_MS);
          const mine = await this.#o.repo.takeOverStale(upload.id, 'COMPLETING', stale);
          if (mine) return this.#finish(mine);
          if (this.#now() > deadline) {
            throw new ApiError('upload_not_in_progress', 'Completion is still in progress; retry.', {
              status: 'COMPLETING',
            });
          }
          await new Promise((r) => setTimeout(r, COMPLETE_POLL_MS));
        }
      }
    }
  }

  /**
   * Completes as the owner of COMPLETING, touching the row every COMPLETING_HEARTBEAT_MS while it
   * works (reading a big object back to hash it takes minutes), so a racer can tell a live owner
   * from one that died (STALE_COMPLETING_MS) and take over.
   */
  async #finish(upload: UploadRow): Promise<CompletedView> {
    const heartbeat = setInterval(() => {
      this.#o.repo.transition(upload.id, ['COMPLETING'], 'COMPLETING').catch(() => {});
    }, COMPLETING_HEARTBEAT_MS);
    try {
      return await this.#finishOwned(upload);
    } finally {
      clearInterval(heartbeat);
    }
  }

  async #finishOwned(upload: UploadRow): Promise<CompletedView> {
    const ref = { key: upload.objectKey, uploadId: upload.s3UploadId! };
    try {
      const parts = await this.#o.limits.runTask(() => this.#o.store.listParts(ref));
      const byNumber = new Map(parts.map((p) => [p.partNumber, p]));
      const missingChunks: number[] = [];
      for (let i = 0; i < upload.totalChunks; i++) {
        if (byNumber.get(i + 1)?.size !== this.expectedSize(upload, i)) missingChunks.push(i);
      }
      if (missingChunks.length > 0) {
        await this.#o.repo.transition(upload.id, ['COMPLETING'], 'IN_PROGRESS');
        throw new ApiError('missing_chunks', undefined, { missingChunks });
      }
      // The database learns the store's view (ETags of chunks never reported, or re-sent);
      // chunks that were still leased give their slots back.
      let partsProven = false;
      await this.#o.repo.locked(upload.id, async (repo) => {
        const rows = await repo.listChunks(upload.id);
        partsProven = this.#o.wholeFileVerify === 'parts' && partsMatchDeclaredMd5(parts, rows);
        const before = new Map(rows.map((c) => [c.chunkIndex, c.status]));
        let held = 0;
        for (const p of parts) {
          if (before.get(p.partNumber - 1) === 'PRESIGNED') held++;
          await repo.markChunkUploaded(upload.id, {
            chunkIndex: p.partNumber - 1,
            s3Key: upload.objectKey,
            etag: p.etag,
            size: p.size,
          });
        }
        if (held > 0) await this.#o.limits.releaseInflight(upload.principal, upload.id, held);
      });
      // Complete with exactly the parts the store holds: Ceph RGW refuses a list that skips one.
      const result = await this.#o.limits.runTask(() =>
        this.#o.store.completeMultipartUpload({
          ...ref,
          parts: parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
        }),
      );
      return await this.#verifyAndSeal(upload, result, partsProven);
    } catch (err) {
      if (isObjectStoreError(err, 'no_such_upload')) {
        // An earlier attempt completed it in the store and died before recording it.
        const head = await this.#o.store.headObject(upload.objectKey);
        if (head) return this.#verifyAndSeal(upload, head);
      }
      // Not completed (throttled, a transient store failure, missing chunks): reopen, so the
      // client can retry. A compare-and-set, so FAILED or an already reopened upload stays as it is.
      await this.#o.repo.transition(upload.id, ['COMPLETING'], 'IN_PROGRESS');
      throw err;
    }
  }

  /**
   * `partsProven`: every part's ETag is the MD5 the client declared for it (WHOLE_FILE_VERIFY=parts),
   * so the declared SHA-256 is accepted without reading the object back.
   */
  async #verifyAndSeal(
    upload: UploadRow,
    object: { etag: string; size: number },
    partsProven = false,
  ): Promise<CompletedView> {
    if (object.size !== upload.fileSize) {
      return this.#fail(upload, `The object is ${object.size} bytes; ${upload.fileSize} were declared.`);
    }
    if (upload.checksumSha256 && partsProven) {
      this.#o.metrics.wholeFileVerifications.inc({ method: 'parts' });
    } else if (upload.checksumSha256) {
      this.#o.metrics.wholeFileVerifications.inc({ method: 'read-back' });
      const actual = await this.#wholeFileSha256(upload.objectKey);
      if (actual !== upload.checksumSha256) {
        return this.#fail(upload, `SHA-256 of the object is ${actual}; ${upload.checksumSha256} was declared.`);
      }
    }
    const done = await this.#o.repo.transition(upload.id, ['COMPLETING'], 'COMPLETED', {
      etag: object.etag,
      completedAt: new Date(this.#now()),
    });
    if (!done) return this.complete(upload.principal, upload.id);
    await this.endLeases(upload.principal, upload.id);
    return completedView(done);
  }

  /** Reads the object back once to hash it: the only way to check a whole-file SHA-256 on any S3. */
  async #wholeFileSha256(key: string): Promise<string> {
    const hash = createHash('sha256');
    const { body } = await this.#o.store.getObject({ key });
    for await (const chunk of body) hash.update(chunk as Buffer);
    return hash.digest('base64');
  }

  async #fail(upload: UploadRow, reason: string): Promise<never> {
    await this.#o.repo.transition(upload.id, ['COMPLETING'], 'FAILED', { failureReason: reason });
    await this.endLeases(upload.principal, upload.id);
    // A corrupt object must not be served as the file.
    await this.#o.store.deleteObject(upload.objectKey).catch(() => {});
    throw new ApiError('checksum_mismatch', reason);
  }

  /** Aborts: ABORTED in the database first (so nothing new starts), then the store's parts are discarded. */
  async abort(principal: string, uploadId: string): Promise<void> {
    const upload = await this.get(principal, uploadId);
    if (upload.status !== 'ABORTED') {
      const aborted = await this.#o.repo.transition(upload.id, OPEN, 'ABORTED', { failureReason: 'aborted by client' });
      if (!aborted) {
        const now = await this.get(principal, uploadId);
        if (now.status !== 'ABORTED') assertOpen(now);
      }
      await this.endLeases(principal, upload.id);
    }
    await this.discardStoreUpload(upload);
  }

  /** Aborts the store's multipart upload of an ABORTED upload; clearing the id records that it is gone. */
  async discardStoreUpload(upload: UploadRow): Promise<void> {
    if (!upload.s3UploadId) return;
    await this.#o.limits.runTask(() =>
      this.#o.store.abortMultipartUpload({ key: upload.objectKey, uploadId: upload.s3UploadId! }),
    );
    await this.#o.repo.clearStoreUploadId(upload.id, 'ABORTED');
  }
}

export interface CompletedView {
  uploadId: string;
  status: 'COMPLETED';
  size: number;
  etag: string;
  checksumSha256?: string;
  fileId: string;
}

function completedView(u: UploadRow): CompletedView {
  return {
    uploadId: u.id,
    status: 'COMPLETED',
    size: u.fileSize,
    etag: u.etag ?? '',
    ...(u.checksumSha256 ? { checksumSha256: u.checksumSha256 } : {}),
    fileId: u.id,
  };
}

/** How long a racing complete waits for the winner before answering "still in progress". */
const COMPLETE_WAIT_MS = 120_000;
const COMPLETE_POLL_MS = 100;
/**
 * A COMPLETING upload untouched this long belongs to a coordinator that died mid-completion (a live
 * one touches it every COMPLETING_HEARTBEAT_MS); a retried complete then takes it over.
 */
const STALE_COMPLETING_MS = 30_000;
const COMPLETING_HEARTBEAT_MS = 5_000;

/** S3 ETags are quoted strings; clients may report them with or without the quotes. */
export function normaliseEtag(etag: string): string {
  const bare = etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
  return `"${bare}"`;
}

export function assertOpen(upload: UploadRow): void {
  if (!OPEN.includes(upload.status)) {
    throw new ApiError('upload_not_in_progress', `The upload is ${upload.status}.`, { status: upload.status });
  }
}

/**
 * True when every part the store holds has a recorded MD5 (declared by the client, signed into the
 * part's URL as Content-MD5) equal to the part's ETag — the MD5 the store computed of the bytes it
 * kept. Not so for an ETag that is no MD5 (SSE-KMS, SSE-C) or a chunk without a declared MD5.
 */
export function partsMatchDeclaredMd5(
  parts: ReadonlyArray<{ partNumber: number; etag: string }>,
  rows: ReadonlyArray<{ chunkIndex: number; md5: string | null }>,
): boolean {
  if (parts.length === 0) return false;
  const md5 = new Map(rows.map((r) => [r.chunkIndex, r.md5]));
  return parts.every((p) => {
    const declared = md5.get(p.partNumber - 1);
    if (!declared) return false;
    const etag = normaliseEtag(p.etag).slice(1, -1).toLowerCase();
    return /^[0-9a-f]{32}$/.test(etag) && Buffer.from(declared, 'base64').toString('hex') === etag;
  });
}
