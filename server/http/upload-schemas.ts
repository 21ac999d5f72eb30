import { z } from 'zod';
import { UPLOAD_STATUSES } from '../../db/schema.ts';

/**
 * Request schemas of the upload endpoints (API.md). They validate requests and generate
 * `GET /v1/openapi.json`, so the document cannot drift from what the server accepts.
 */

const base64 = (bytes: number) =>
  z
    .string()
    .length(Math.ceil(bytes / 3) * 4)
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'expected base64')
    .refine((s) => Buffer.from(s, 'base64').length === bytes, `expected ${bytes} bytes in base64`);

export const md5Base64 = base64(16).describe('Base64 MD5 of the bytes (as in Content-MD5)');
export const sha256Base64 = base64(32).describe('Base64 SHA-256 of the bytes');

export const uploadIdParam = z.uuid({ error: 'uploadId must be a UUID' });
/** A path segment of plain decimal digits only (no `0x2`, `2e0`, ` 2`, which Number() would accept). */
export const chunkIndexParam = z
  .string()
  .regex(/^\d{1,5}$/, 'chunkIndex must be a whole number from 0 to 9999')
  .transform(Number)
  .pipe(z.number().max(9_999, 'chunkIndex must be below 10000'));

/**
 * Server-side encryption of the object (README "Encryption at rest"): SSE-S3 (`AES256`) or
 * SSE-KMS (`aws:kms`, a KMS key id, alias or ARN; `bucketKey` for S3 Bucket Keys).
 */
export const encryptionBody = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('SSE-S3') }),
  z.strictObject({
    mode: z.literal('SSE-KMS'),
    kmsKeyId: z
      .string()
      .min(1)
      .max(2048)
      .regex(/^[\x21-\x7e]+$/, 'kmsKeyId: printable ASCII without spaces')
      .optional(),
    bucketKey: z.boolean().optional(),
  }),
]);

export const initUploadBody = z.strictObject({
  fileName: z
    .string()
    .min(1)
    .max(1024)
    .refine((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f), {
      message: 'fileName must not contain control characters',
    }),
  fileSize: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  contentType: z
    .string()
    .max(255)
    .regex(/^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=("[^"]*"|[\w.+-]+))*$/, 'expected a media type such as text/plain')
    .optional(),
  chunkSize: z.number().int().positive().optional(),
  checksumSha256: sha256Base64.optional(),
  metadata: z
    .record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'metadata keys: 1-64 of A-Z a-z 0-9 _ -'), z.string().max(1024))
    .refine((m) => Object.keys(m).length <= 32, 'at most 32 metadata entries')
    .optional(),
  encryption: encryptionBody.optional(),
});

export const presignBody = z.strictObject({
  chunks: z
    .array(
      z.strictObject({
        chunkIndex: z.number().int().min(0),
        md5: md5Base64.optional(),
        sha256: sha256Base64.optional(),
      }),
    )
    .min(1, 'chunks: 1 to 100 entries')
    .max(100, 'chunks: 1 to 100 entries'),
});

export const reportBody = z.strictObject({
  etag: z.string().min(1).max(256),
  size: z.number().int().min(0),
  md5: md5Base64.optional(),
  sha256: sha256Base64.optional(),
  attempts: z.number().int().min(1).max(1000).optional(),
});

export const completeBody = z
  .strictObject({
    chunks: z
      .array(z.strictObject({ chunkIndex: z.number().int().min(0), etag: z.string().min(1).max(256) }))
      .max(10_000)
      .optional(),
  })
  .optional();

export const listUploadsQuery = z.strictObject({
  status: z.enum(UPLOAD_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
});

export const idempotencyKeyHeader = z
  .string()
  .min(1)
  .max(255, 'Idempotency-Key: at most 255 characters')
  .regex(/^[\x21-\x7e]+$/, 'Idempotency-Key: printable ASCII without spaces');
