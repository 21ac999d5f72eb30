import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';

/**
 * The upload state machine (API.md): INITIATED → IN_PROGRESS → COMPLETING → COMPLETED;
 * any non-terminal state → ABORTED or FAILED. Enforced by a CHECK here and by
 * compare-and-set updates in the repository.
 */
export const UPLOAD_STATUSES = ['INITIATED', 'IN_PROGRESS', 'COMPLETING', 'COMPLETED', 'ABORTED', 'FAILED'] as const;
export type UploadStatus = (typeof UPLOAD_STATUSES)[number];
export const TERMINAL_STATUSES: readonly UploadStatus[] = ['COMPLETED', 'ABORTED', 'FAILED'];

/**
 * A chunk is PENDING until a URL is issued, PRESIGNED while a client holds a lease on
 * it (an inflight slot), UPLOADED once reported or seen in the store, FAILED when the
 * relay path gave up on it.
 */
export const CHUNK_STATUSES = ['PENDING', 'PRESIGNED', 'UPLOADED', 'FAILED'] as const;
export type ChunkStatus = (typeof CHUNK_STATUSES)[number];

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const inList = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));

export const uploads = pgTable(
  'uploads',
  {
    id: uuid('id').primaryKey(),
    /** The principal (tenant) that created the upload; only it may see or change it. */
    principal: text('principal').notNull(),
    fileName: text('file_name').notNull(),
    fileSize: bigint('file_size', { mode: 'number' }).notNull(),
    chunkSize: bigint('chunk_size', { mode: 'number' }).notNull(),
    totalChunks: integer('total_chunks').notNull(),
    contentType: text('content_type').notNull().default('application/octet-stream'),
    status: text('status').$type<UploadStatus>().notNull().default('INITIATED'),
    objectKey: text('object_key').notNull(),
    /** The store's multipart upload id (S3 `UploadId`). */
    s3UploadId: text('s3_upload_id'),
    /** Base64 SHA-256 of the whole file, as declared by the client at init. */
    checksumSha256: text('checksum_sha256'),
    /** The completed object's ETag (quoted, as S3 returns it). */
    etag: text('etag'),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default({}),
    /** Server-side encryption the object is stored with (SSE-S3, SSE-KMS); NULL = the bucket's default. */
    encryption: jsonb('encryption').$type<UploadEncryption>(),
    /** Why the upload ended FAILED or ABORTED, for operators. */
    failureReason: text('failure_reason'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
    completedAt: ts('completed_at'),
    /** After this the sweeper aborts the upload if it is not terminal. */
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [
    check('uploads_status_check', sql`${t.status} IN (${inList(UPLOAD_STATUSES)})`),
    check('uploads_file_size_check', sql`${t.fileSize} >= 0`),
    check('uploads_chunk_size_check', sql`${t.chunkSize} > 0`),
    check('uploads_total_chunks_check', sql`${t.totalChunks} >= 1`),
    index('uploads_principal_created_idx').on(t.principal, t.createdAt.desc(), t.id.desc()),
    index('uploads_status_expires_idx').on(t.status, t.expiresAt),
  ],
);

export const chunks = pgTable(
  'chunks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    uploadId: uuid('upload_id')
      .notNull()
      .references(() => uploads.id, { onDelete: 'cascade' }),
    /** 0-based, as in the API; the S3 part number is chunk_index + 1. */
    chunkIndex: integer('chunk_index').notNull(),
    s3Key: text('s3_key').notNull(),
    status: text('status').$type<ChunkStatus>().notNull().default('PENDING'),
    size: bigint('size', { mode: 'number' }),
    etag: text('etag'),
    md5: text('md5'),
    sha256: text('sha256'),
    retryCount: integer('retry_count').notNull().default(0),
    /** While PRESIGNED: when the client's inflight slot lapses. */
    leaseExpiresAt: ts('lease_expires_at'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    unique('chunks_upload_chunk_unique').on(t.uploadId, t.chunkIndex),
    check('chunks_status_check', sql`${t.status} IN (${inList(CHUNK_STATUSES)})`),
    check('chunks_chunk_index_check', sql`${t.chunkIndex} >= 0`),
    check('chunks_retry_count_check', sql`${t.retryCount} >= 0`),
    index('chunks_lease_idx').on(t.leaseExpiresAt).where(sql`${t.status} = 'PRESIGNED'`),
  ],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    principal: text('principal').notNull(),
    /** Hex SHA-256 of the key. The plain key is shown once at creation and never stored. */
    keyHash: text('key_hash').notNull(),
    /** The key's first characters, so operators can tell keys apart. */
    keyPrefix: text('key_prefix').notNull(),
    label: text('label'),
    /** May call /v1/admin/* (audit log, key management). */
    admin: boolean('admin').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
    lastUsedAt: ts('last_used_at'),
    revokedAt: ts('revoked_at'),
  },
  (t) => [unique('api_keys_key_hash_unique').on(t.keyHash), index('api_keys_principal_idx').on(t.principal)],
);

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    principal: text('principal').notNull(),
    key: text('key').notNull(),
    /** `METHOD path` the key was first used on. */
    scope: text('scope').notNull(),
    /** Hex SHA-256 of the first request's body: a repeat with another body is refused. */
    requestHash: text('request_hash').notNull(),
    /** NULL while the first request is still being processed. */
    responseStatus: integer('response_status'),
    responseBody: jsonb('response_body'),
    /**
     * Random per claiming request: a coordinator that lost the answer to its own claim (a reset
     * connection) can free exactly that claim, never another request's.
     */
    claimToken: text('claim_token'),
    createdAt: ts('created_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.principal, t.key] }),
    index('idempotency_keys_expires_idx').on(t.expiresAt),
    check('idempotency_keys_key_length_check', sql`char_length(${t.key}) BETWEEN 1 AND 255`),
  ],
);

/**
 * Per-principal quota overrides; a NULL column (or no row) means the configured default
 * (QUOTA_MAX_* variables). Set with `npm run admin -- quota set`.
 */
export const principals = pgTable(
  'principals',
  {
    name: text('name').primaryKey(),
    /** Uploads not yet COMPLETED/ABORTED/FAILED at once; 0 = unlimited. */
    maxConcurrentUploads: integer('max_concurrent_uploads'),
    /** Declared bytes of those uploads; 0 = unlimited. */
    maxBytesInFlight: bigint('max_bytes_in_flight', { mode: 'number' }),
    /** Bytes of completed files plus uploads in flight; 0 = unlimited. */
    maxTotalBytes: bigint('max_total_bytes', { mode: 'number' }),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    check(
      'principals_quotas_check',
      sql`${t.maxConcurrentUploads} >= 0 AND ${t.maxBytesInFlight} >= 0 AND ${t.maxTotalBytes} >= 0`,
    ),
  ],
);

/**
 * Who did what, append-only: a trigger (migration 0002) rejects UPDATE, DELETE and TRUNCATE.
 * `upload_id` has no foreign key on purpose: the record outlives what it describes.
 */
export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull().defaultNow(),
    /** Who acted: the authenticated principal, or `cli:<user>` for the admin command. */
    principal: text('principal').notNull(),
    /** e.g. `upload.init`, `chunks.presign`, `key.revoke` (see server/audit/audit-log.ts). */
    action: text('action').notNull(),
    /** The principal acted upon, when not the actor (key changes). */
    target: text('target'),
    uploadId: uuid('upload_id'),
    bytes: bigint('bytes', { mode: 'number' }),
    chunks: integer('chunks'),
    clientAddress: text('client_address'),
    requestId: text('request_id'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    index('audit_log_at_idx').on(t.at),
    index('audit_log_principal_idx').on(t.principal, t.id),
    index('audit_log_target_idx').on(t.target, t.id),
  ],
);

/** SSE of an upload's object, as requested at init (API: `encryption`). */
export type UploadEncryption = { mode: 'SSE-S3' } | { mode: 'SSE-KMS'; kmsKeyId?: string; bucketKey?: boolean };

export type UploadRow = typeof uploads.$inferSelect;
export type NewUploadRow = typeof uploads.$inferInsert;
export type ChunkRow = typeof chunks.$inferSelect;
export type ApiKeyRow = typeof apiKeys.$inferSelect;
export type PrincipalRow = typeof principals.$inferSelect;
export type AuditRow = typeof auditLog.$inferSelect;
