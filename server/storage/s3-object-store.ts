import https from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  type CreateMultipartUploadCommandOutput,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListPartsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { isNetworkFailure, isObjectStoreError, ObjectStoreError, StoreUnavailableError } from './errors.ts';
import { assertPartList } from './multipart-rules.ts';
import type {
  CompleteInput,
  CreateMultipartInput,
  GetObjectInput,
  MultipartRef,
  ObjectBody,
  ObjectHead,
  ObjectStore,
  PartInfo,
  PresignedRequest,
  PresignGetInput,
  PresignPartsInput,
  UploadPartInput,
} from './object-store.ts';
import { encryptionRefusal, toObjectStoreError } from './s3-errors.ts';
import { resolveLocation, S3Presigner } from './s3-presigner.ts';

export interface S3ObjectStoreOptions {
  bucket: string;
  region: string;
  /** Custom endpoint (Ceph RGW, MinIO, LocalStack). @default AWS's regional endpoint */
  endpoint?: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`. @default false */
  forcePathStyle?: boolean;
  /** Prepended to every object key. @default '' */
  prefix?: string;
  /**
   * A ready client (tests). Credentials always come from the client, by default the SDK's
   * provider chain (AWS_* variables, profile, IAM role): this store never takes keys.
   */
  client?: S3Client;
  /**
   * Whether the store rejects a part whose body does not match a signed `x-amz-checksum-sha256`.
   * AWS does; Ceph RGW 16 accepts any value. @default true for AWS (no `endpoint`), false otherwise
   */
  verifiesSha256?: boolean;
  /** ListParts page size; S3's maximum and default is 1,000. @default 1000 */
  maxPartsPerPage?: number;
  /**
   * Called after every S3 call, e.g. for `object_store_request_duration_seconds{operation}`.
   * `ok` is false when the call failed without a definite S3 answer (network error, 5xx, throttling,
   * access denied); "not found", "no such upload", "bad digest" and the like count as ok.
   */
  onRequest?: (operation: string, seconds: number, ok: boolean) => void;
  /**
   * Longest wait for an answer (a GET: its headers) before `StoreUnavailableError`; UploadPart
   * and CompleteMultipartUpload are not timed. @default none
   */
  requestTimeoutMs?: number;
  /** Clock used as the signing date of presigned URLs. @default Date.now */
  now?: () => number;
  /**
   * TLS to the endpoint. `ca`: the complete list of trusted CAs (it replaces Node's default store;
   * see `s3TrustedCas`). `rejectUnauthorized: false` accepts any certificate (tests only).
   * @default Node's default store (public roots + NODE_EXTRA_CA_CERTS), verified
   */
  tls?: { ca?: string[]; rejectUnauthorized?: boolean };
}

/**
 * Presigned URLs stop working when the credentials that signed them expire, whatever X-Amz-Expires
 * says ("If you created a presigned URL using a temporary token, then the URL expires when the token
 * expires", S3 User Guide, "Sharing objects with presigned URLs"). URLs are cut to end this long
 * before the credentials do, for clock skew between the coordinator and S3.
 */
export const CREDENTIAL_EXPIRY_MARGIN_SECONDS = 60;

/**
 * The X-Amz-Expires to sign with: `requested`, cut so that the URL ends `CREDENTIAL_EXPIRY_MARGIN_SECONDS`
 * before `credentialsExpireAt` (never below 1 s, SigV4's minimum). Pure.
 */
export function capExpiresIn(requested: number, now: number, credentialsExpireAt?: Date): number {
  if (!credentialsExpireAt) return requested;
  const remaining = Math.floor((credentialsExpireAt.getTime() - now) / 1000) - CREDENTIAL_EXPIRY_MARGIN_SECONDS;
  return Math.max(1, Math.min(requested, remaining));
}

/**
 * ObjectStore on S3 or an S3-compatible gateway. IAM actions needed on the bucket/prefix:
 * s3:PutObject (create, upload part, complete), s3:AbortMultipartUpload, s3:ListMultipartUploadParts,
 * s3:GetObject, s3:DeleteObject, s3:ListBucket (HeadBucket, and 404 rather than 403 for missing keys).
 */
/**
 * The SDK's default handler with our own https Agent: keep-alive and the SDK's default of 50
 * sockets per host, plus the CAs to trust. Certificates are always verified unless told otherwise.
 */
function tlsRequestHandler(tls: NonNullable<S3ObjectStoreOptions['tls']>): NodeHttpHandler {
  const httpsAgent = new https.Agent({
    keepAlive: true,
    maxSockets: 50,
    ...(tls.ca ? { ca: tls.ca } : {}),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  });
  return new NodeHttpHandler({ httpsAgent });
}

/** Calls that address a multipart upload, where Ceph's NoSuchKey means NoSuchUpload. */
const MULTIPART = { multipart: true };

export class S3ObjectStore implements ObjectStore {
  readonly kind = 's3';
  readonly capabilities: { verifiesSha256: boolean };
  readonly client: S3Client;
  /**
   * The client for UploadPart: no SDK-level retries. A retry needs the body again, which the
   * SDK cannot re-read from a stream; the caller (the relay) keeps the bytes and retries with
   * its own policy (MAX_RETRIES, full-jitter backoff), which is also what `retries_total` counts.
   */
  readonly #dataClient: S3Client;
  readonly #requestTimeoutMs: number | undefined;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #presigner: S3Presigner;
  readonly #maxParts: number;
  readonly #onRequest: S3ObjectStoreOptions['onRequest'];
  readonly #now: () => number;

  constructor(options: S3ObjectStoreOptions) {
    if (!options.bucket)
      throw new TypeError(`S3ObjectStore: bucket is required, got ${JSON.stringify(options.bucket)}`);
    if (!options.region)
      throw new TypeError(`S3ObjectStore: region is required, got ${JSON.stringify(options.region)}`);
    const maxParts = options.maxPartsPerPage ?? 1000;
    if (!Number.isInteger(maxParts) || maxParts < 1 || maxParts > 1000) {
      throw new TypeError(`S3ObjectStore: maxPartsPerPage must be 1..1000, got ${maxParts}`);
    }
    const clientConfig = {
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle ?? false,
      // Only send/verify checksums S3 requires: Ceph RGW and other gateways reject or mishandle
      // the CRC32 trailers that SDK versions since early 2025 add by default.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    } as const;
    const requestHandler = options.tls ? tlsRequestHandler(options.tls) : undefined;
    const withHandler = requestHandler ? { ...clientConfig, requestHandler } : clientConfig;
    this.client = options.client ?? new S3Client(withHandler);
    this.#dataClient = options.client ?? new S3Client({ ...withHandler, maxAttempts: 1 });
    this.capabilities = { verifiesSha256: options.verifiesSha256 ?? !options.endpoint };
    this.#bucket = options.bucket;
    this.#prefix = options.prefix ?? '';
    this.#maxParts = maxParts;
    this.#onRequest = options.onRequest;
    this.#requestTimeoutMs = options.requestTimeoutMs;
    this.#now = options.now ?? Date.now;
    this.#presigner = new S3Presigner(
      resolveLocation(options),
      {
        // The client's resolved (memoised, refreshing) credential provider and hash: one source of truth.
        credentials: this.client.config.credentials,
        sha256: this.client.config.sha256,
        region: options.region,
      },
      this.#now,
    );
  }

  /**
   * With `encryption`, the SSE headers go on CreateMultipartUpload only: S3 encrypts every part
   * with the upload's settings, so presigned UploadPart URLs need no extra header for SSE-S3 or
   * SSE-KMS ("You only need to specify the encryption information in your request to initiate
   * the multipart upload", S3 User Guide, "Specifying server-side encryption with AWS KMS");
   * verified on Ceph RGW 16.2 too. The answer must echo the mode: a store that ignores the header
   * (Ceph RGW 16 takes `AES256` and stores plaintext) is refused, never trusted.
   */
  async createMultipartUpload(input: CreateMultipartInput, signal?: AbortSignal): Promise<{ uploadId: string }> {
    const e = input.encryption;
    let out: CreateMultipartUploadCommandOutput;
    try {
      out = await this.#send('CreateMultipartUpload', signal, (o) =>
        this.client.send(
          new CreateMultipartUploadCommand({
            Bucket: this.#bucket,
            Key: this.#key(input.key),
            ContentType: input.contentType,
            Metadata: input.metadata,
            ...(e?.mode === 'SSE-S3' ? { ServerSideEncryption: 'AES256' } : {}),
            ...(e?.mode === 'SSE-KMS'
              ? {
                  ServerSideEncryption: 'aws:kms',
                  ...(e.kmsKeyId ? { SSEKMSKeyId: e.kmsKeyId } : {}),
                  ...(e.bucketKey ? { BucketKeyEnabled: true } : {}),
                }
              : {}),
          }),
          o,
        ),
      );
    } catch (err) {
      throw e ? encryptionRefusal(err, e) : err;
    }
    if (!out.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
    const wanted = e?.mode === 'SSE-S3' ? 'AES256' : e?.mode === 'SSE-KMS' ? 'aws:kms' : undefined;
    if (wanted && out.ServerSideEncryption !== wanted) {
      await this.abortMultipartUpload({ key: input.key, uploadId: out.UploadId }).catch(() => {});
      throw new ObjectStoreError(
        'encryption_unsupported',
        `${e!.mode} requested, but the store answered x-amz-server-side-encryption: ${out.ServerSideEncryption ?? '(none)'}`,
      );
    }
    return { uploadId: out.UploadId };
  }

  async presignUploadParts(input: PresignPartsInput): Promise<PresignedRequest[]> {
    const expiresInSeconds = await this.#presignLifetime(input.expiresInSeconds);
    return this.#presigner.uploadParts({ ...input, expiresInSeconds, key: this.#key(input.key) });
  }

  async presignGetObject(input: PresignGetInput): Promise<PresignedRequest> {
    const expiresInSeconds = await this.#presignLifetime(input.expiresInSeconds);
    return this.#presigner.getObject({ ...input, expiresInSeconds, key: this.#key(input.key) });
  }

  /**
   * PRESIGN_TTL_SECONDS, capped by the signing credentials' own lifetime (role, web identity,
   * SSO and container credentials carry an `expiration`; static keys do not). The provider is the
   * client's memoised one, which renews credentials 5 minutes before they expire, and is the same
   * call the presigner makes next, so this adds no request.
   */
  async #presignLifetime(requested: number): Promise<number> {
    const credentials = await this.client.config.credentials();
    return capExpiresIn(requested, this.#now(), credentials.expiration);
  }

  async uploadPart(input: UploadPartInput, signal?: AbortSignal): Promise<{ etag: string }> {
    const out = await this.#send(
      'UploadPart',
      signal,
      (o) =>
        this.#dataClient.send(
          new UploadPartCommand({
            ...this.#ref(input),
            PartNumber: input.partNumber,
            Body: input.body,
            ContentLength: input.contentLength,
            ContentMD5: input.md5,
          }),
          o,
        ),
      MULTIPART,
    );
    if (!out.ETag) throw new Error('UploadPart returned no ETag');
    return { etag: out.ETag };
  }

  async listParts(input: MultipartRef, signal?: AbortSignal): Promise<PartInfo[]> {
    const parts: PartInfo[] = [];
    let marker: string | undefined;
    // ListParts returns at most MaxParts (≤ 1,000) parts per call; follow NextPartNumberMarker while IsTruncated.
    for (;;) {
      const page = await this.#send(
        'ListParts',
        signal,
        (o) =>
          this.client.send(
            new ListPartsCommand({ ...this.#ref(input), MaxParts: this.#maxParts, PartNumberMarker: marker }),
            o,
          ),
        MULTIPART,
      );
      for (const p of page.Parts ?? []) {
        parts.push({ partNumber: p.PartNumber ?? 0, etag: p.ETag ?? '', size: p.Size ?? 0 });
      }
      if (!page.IsTruncated || !page.NextPartNumberMarker || page.NextPartNumberMarker === marker) break;
      marker = page.NextPartNumberMarker;
    }
    return parts.sort((a, b) => a.partNumber - b.partNumber);
  }

  async completeMultipartUpload(input: CompleteInput, signal?: AbortSignal): Promise<{ etag: string; size: number }> {
    // Checked here because Ceph RGW 16 does not: it completes an unordered list (with an empty ETag).
    assertPartList(input.parts);
    const Parts = input.parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag }));
    let etag: string | undefined;
    try {
      const out = await this.#send(
        'CompleteMultipartUpload',
        signal,
        (o) =>
          this.client.send(new CompleteMultipartUploadCommand({ ...this.#ref(input), MultipartUpload: { Parts } }), o),
        MULTIPART,
      );
      etag = out.ETag;
    } catch (err) {
      throw await this.#explainCompleteFailure(input, err, signal);
    }
    // The response has no size, and Ceph RGW may return an empty ETag: read both back.
    const head = await this.headObject(input.key, signal);
    if (!head) throw new Error(`object ${input.key} missing right after CompleteMultipartUpload`);
    return { etag: etag || head.etag, size: head.size };
  }

  async abortMultipartUpload(input: MultipartRef, signal?: AbortSignal): Promise<void> {
    try {
      await this.#send(
        'AbortMultipartUpload',
        signal,
        (o) => this.client.send(new AbortMultipartUploadCommand(this.#ref(input)), o),
        MULTIPART,
      );
    } catch (err) {
      // Aborting an unknown or already aborted upload leaves nothing behind: that is success.
      if (!isObjectStoreError(err, 'no_such_upload')) throw err;
    }
  }

  async headObject(key: string, signal?: AbortSignal): Promise<ObjectHead | null> {
    try {
      const out = await this.#send('HeadObject', signal, (o) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }), o),
      );
      const encryption =
        out.ServerSideEncryption === 'aws:kms'
          ? { mode: 'SSE-KMS' as const, ...(out.SSEKMSKeyId ? { kmsKeyId: out.SSEKMSKeyId } : {}) }
          : out.ServerSideEncryption === 'AES256'
            ? { mode: 'SSE-S3' as const }
            : undefined;
      return {
        size: out.ContentLength ?? 0,
        etag: out.ETag ?? '',
        contentType: out.ContentType,
        lastModified: out.LastModified,
        ...(encryption ? { encryption } : {}),
      };
    } catch (err) {
      if (isObjectStoreError(err, 'not_found')) return null;
      throw err;
    }
  }

  async getObject(input: GetObjectInput, signal?: AbortSignal): Promise<ObjectBody> {
    // Timed until the response headers arrive; the body is streamed by the caller.
    const out = await this.#send('GetObject', signal, (o) =>
      this.client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(input.key),
          Range: input.range ? `bytes=${input.range.start}-${input.range.end}` : undefined,
          IfMatch: input.ifMatch,
        }),
        o,
      ),
    );
    const contentLength = out.ContentLength ?? 0;
    // "Content-Range: bytes 0-9/443" (RFC 9110 §14.4): the total follows the slash.
    const total = out.ContentRange ? Number(out.ContentRange.split('/')[1]) : contentLength;
    return {
      body: out.Body as Readable,
      contentLength,
      totalSize: Number.isFinite(total) ? total : contentLength,
      etag: out.ETag ?? '',
      contentType: out.ContentType,
    };
  }

  async deleteObject(key: string, signal?: AbortSignal): Promise<void> {
    // S3 DeleteObject answers 204 whether or not the key existed.
    await this.#send('DeleteObject', signal, (o) =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#key(key) }), o),
    );
  }

  async checkReady(signal?: AbortSignal): Promise<void> {
    await this.#send('HeadBucket', signal, (o) => this.client.send(new HeadBucketCommand({ Bucket: this.#bucket }), o));
  }

  /**
   * Ceph RGW 16 answers a complete of an aborted or unknown upload with 500 InternalError "This
   * multipart completion is already in progress" (its completion lock finds no upload). ListParts
   * tells that apart from a real concurrent completion: it answers 404 only when the upload is gone.
   */
  async #explainCompleteFailure(input: CompleteInput, err: unknown, signal?: AbortSignal): Promise<unknown> {
    const message = err instanceof Error ? err.message : '';
    if (!/already in progress/i.test(message)) return err;
    try {
      await this.listParts(input, signal);
      return err;
    } catch (probe) {
      if (!isObjectStoreError(probe, 'no_such_upload')) return err;
      return new ObjectStoreError('no_such_upload', `no multipart upload ${input.uploadId}: ${message}`, {
        cause: err,
      });
    }
  }

  #ref(ref: MultipartRef): { Bucket: string; Key: string; UploadId: string } {
    return { Bucket: this.#bucket, Key: this.#key(ref.key), UploadId: ref.uploadId };
  }

  #key(key: string): string {
    return `${this.#prefix}${key}`;
  }

  /** Runs one S3 call: reports its duration to `onRequest`, maps S3 errors to ObjectStoreError. */
  async #send<O>(
    operation: string,
    abortSignal: AbortSignal | undefined,
    send: (options: { abortSignal?: AbortSignal }) => Promise<O>,
    mapping: { multipart?: boolean } = {},
  ): Promise<O> {
    const started = performance.now();
    let ok = false;
    // Not timed: UploadPart carries a part's bytes, and S3 may take minutes to assemble a large
    // object on CompleteMultipartUpload (it keeps the connection alive meanwhile).
    const timeoutMs = UNTIMED.has(operation) ? undefined : this.#requestTimeoutMs;
    // The caller's signal still reaches the request after the answer (a GET body it stops reading).
    const ac = new AbortController();
    if (abortSignal?.aborted) ac.abort(abortSignal.reason);
    else abortSignal?.addEventListener('abort', () => ac.abort(abortSignal.reason), { once: true });
    const late = `${operation}: no answer from the object store within ${timeoutMs} ms`;
    let timedOut = false;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            ac.abort(new Error(late));
          }, timeoutMs);
    try {
      const out = await send({ abortSignal: ac.signal });
      ok = true;
      return out;
    } catch (err) {
      if (timedOut && !abortSignal?.aborted) {
        throw new StoreUnavailableError(late, { cause: err });
      }
      if (isNetworkFailure(err)) {
        throw new StoreUnavailableError(
          `${operation}: the object store cannot be reached (${(err as Error).message})`,
          {
            cause: err,
          },
        );
      }
      const mapped = toObjectStoreError(err, mapping);
      // A definite S3 answer the caller acts on (404, BadDigest, ...) is the store working as it should.
      ok = mapped instanceof ObjectStoreError;
      throw mapped;
    } finally {
      clearTimeout(timer);
      this.#onRequest?.(operation, (performance.now() - started) / 1000, ok);
    }
  }
}

const UNTIMED = new Set(['UploadPart', 'CompleteMultipartUpload']);
