import type { Readable } from 'node:stream';

/**
 * The one interface Conveyor has to an object store. Two implementations:
 * `S3ObjectStore` (AWS S3, Ceph RGW, MinIO, LocalStack) and `DiskObjectStore`
 * (the embedded default). Nothing here knows about HTTP servers or the database.
 *
 * Part numbers are S3's (1-based). The API's 0-based `chunkIndex` never reaches
 * this layer: callers convert with `partNumber = chunkIndex + 1`.
 */
export interface ObjectStore {
  /** Which implementation this is; reported by tests, logs and `/readyz`. */
  readonly kind: 'disk' | 's3';
  /** What the store can enforce on a presigned PUT beyond the signature. */
  readonly capabilities: StoreCapabilities;

  createMultipartUpload(input: CreateMultipartInput, signal?: AbortSignal): Promise<{ uploadId: string }>;
  /**
   * Presigns one PUT per part. Each URL covers exactly one part of one upload with
   * its exact `Content-Length` signed in (and `Content-MD5` / `x-amz-checksum-sha256`
   * when given). Pure CPU work, no network round trip.
   */
  presignUploadParts(input: PresignPartsInput): Promise<PresignedRequest[]>;
  /** Uploads one part's bytes (relay path). Rejects `bad_digest` when `md5` does not match. */
  uploadPart(input: UploadPartInput, signal?: AbortSignal): Promise<{ etag: string }>;
  /** Every part the store holds for the upload, in part-number order (follows pagination). */
  listParts(input: MultipartRef, signal?: AbortSignal): Promise<PartInfo[]>;
  /** Completes the upload; resolves the final object's ETag (read back when the store omits it). */
  completeMultipartUpload(input: CompleteInput, signal?: AbortSignal): Promise<{ etag: string; size: number }>;
  /** Aborts and discards all parts. Aborting an unknown or already-aborted upload succeeds. */
  abortMultipartUpload(input: MultipartRef, signal?: AbortSignal): Promise<void>;
  /** Metadata of a completed object, or `null` when there is none. */
  headObject(key: string, signal?: AbortSignal): Promise<ObjectHead | null>;
  /** A presigned GET of the object, optionally for one inclusive byte range. */
  presignGetObject(input: PresignGetInput): Promise<PresignedRequest>;
  /** Reads the object, or one inclusive byte range of it, as a stream. */
  getObject(input: GetObjectInput, signal?: AbortSignal): Promise<ObjectBody>;
  /** Deletes a completed object; deleting a missing object succeeds. */
  deleteObject(key: string, signal?: AbortSignal): Promise<void>;
  /** Throws when the store cannot be reached (used by `/readyz`). */
  checkReady(signal?: AbortSignal): Promise<void>;
}

export interface StoreCapabilities {
  /** The store rejects a PUT whose body does not match a signed `x-amz-checksum-sha256`. */
  readonly verifiesSha256: boolean;
}

export interface MultipartRef {
  key: string;
  uploadId: string;
}

export interface CreateMultipartInput {
  key: string;
  contentType?: string;
  metadata?: Record<string, string>;
  /**
   * Server-side encryption of the object. The store either confirms it (S3 echoes the mode in
   * its answer) or rejects the call with `encryption_unsupported`: it never silently stores
   * plaintext when encryption was asked for.
   */
  encryption?: ObjectEncryption;
}

/**
 * SSE-S3 (`AES256`, keys managed by the store) or SSE-KMS (`aws:kms`, a KMS key; `bucketKey`
 * asks for S3 Bucket Keys). SSE-C is not offered: it would put the key into every presigned
 * request's headers, i.e. into the hands of every client.
 */
export type ObjectEncryption = { mode: 'SSE-S3' } | { mode: 'SSE-KMS'; kmsKeyId?: string; bucketKey?: boolean };

export interface PartToPresign {
  partNumber: number;
  /** Exact byte count the client must send; signed into the URL. */
  contentLength: number;
  /** Base64 MD5 of the part; becomes a signed `Content-MD5` header. */
  md5?: string;
  /** Base64 SHA-256 of the part; becomes a signed `x-amz-checksum-sha256` header. */
  sha256?: string;
}

export interface PresignPartsInput extends MultipartRef {
  parts: PartToPresign[];
  expiresInSeconds: number;
}

export interface PresignedRequest {
  url: string;
  method: 'PUT' | 'GET';
  /** Headers the client must send exactly as given (they are part of the signature). */
  headers: Record<string, string>;
  expiresAt: Date;
}

export interface UploadPartInput extends MultipartRef {
  partNumber: number;
  body: Readable | Buffer;
  contentLength: number;
  /** Base64 MD5; the store rejects the part with `bad_digest` when the bytes differ. */
  md5?: string;
}

export interface PartInfo {
  partNumber: number;
  /** Quoted, as S3 returns it, e.g. `"9b2cf535f27731c974343645a3985328"`. */
  etag: string;
  size: number;
}

export interface CompleteInput extends MultipartRef {
  parts: Array<{ partNumber: number; etag: string }>;
}

export interface ObjectHead {
  size: number;
  etag: string;
  contentType?: string;
  lastModified?: Date;
  /** The server-side encryption the store reports for the object (absent: none reported). */
  encryption?: { mode: 'SSE-S3' | 'SSE-KMS'; kmsKeyId?: string };
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface PresignGetInput {
  key: string;
  range?: ByteRange;
  expiresInSeconds: number;
}

export interface GetObjectInput {
  key: string;
  range?: ByteRange;
  /** Fails with `precondition_failed` when the object's ETag differs. */
  ifMatch?: string;
}

export interface ObjectBody {
  body: Readable;
  /** Bytes in `body`. */
  contentLength: number;
  /** Size of the whole object. */
  totalSize: number;
  etag: string;
  contentType?: string;
}
