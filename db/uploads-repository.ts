import { and, asc, desc, eq, inArray, lt, or, sql } from 'drizzle-orm';
import type { Db, Tx } from './client.ts';
import { PrincipalsRepository, type QuotaUsage } from './principals-repository.ts';
import { type ChunkRow, chunks, type NewUploadRow, type UploadRow, type UploadStatus, uploads } from './schema.ts';

export interface ListUploadsQuery {
  principal: string;
  status?: UploadStatus;
  limit: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface ChunkLease {
  chunkIndex: number;
  s3Key: string;
  size: number;
  md5?: string | null;
  sha256?: string | null;
}

export interface ChunkReport {
  chunkIndex: number;
  s3Key: string;
  etag: string;
  size: number;
  md5?: string | null;
  sha256?: string | null;
  /** Failed attempts before this success; added to retry_count. */
  retries?: number;
}

/**
 * All SQL about uploads and their chunks. State changes are compare-and-set
 * (`UPDATE … WHERE status IN (…) RETURNING`): the database, not process memory, decides
 * which of several racing requests wins. Chunk writes are upserts keyed by
 * (upload_id, chunk_index), so repeating a report is harmless.
 */
export class UploadsRepository {
  constructor(private readonly db: Db | Tx) {}

  /**
   * Runs `fn` in a transaction holding a lock on one upload (an advisory transaction lock, so
   * it also covers chunk rows that do not exist yet). Presign, report, abort and lease
   * expiry of the same upload take it, so each inflight slot is taken and given back exactly
   * once, on any number of coordinators.
   */
  async locked<T>(uploadId: string, fn: (repo: UploadsRepository) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${uploadId}, 0))`);
      return fn(new UploadsRepository(tx));
    });
  }

  /**
   * Creates the upload only if `check` (given the principal's usage, counted inside the
   * transaction) does not throw. A per-principal advisory transaction lock serialises this
   * principal's quota-checked creations on every coordinator, so two racing inits cannot both
   * pass a check that only one of them fits in.
   */
  async createWithinQuota(row: NewUploadRow, check: (usage: QuotaUsage) => void): Promise<UploadRow> {
    return this.db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`principal:${row.principal}`}, 1))`);
      check(await new PrincipalsRepository(tx).usage(row.principal));
      return new UploadsRepository(tx).create(row);
    });
  }

  async create(row: NewUploadRow): Promise<UploadRow> {
    // created_at is set here, at millisecond precision, because the pagination cursor carries a
    // JS Date: a microsecond now() would make rows fall between two pages.
    const now = new Date();
    const [created] = await this.db
      .insert(uploads)
      .values({ createdAt: now, updatedAt: now, ...row })
      .returning();
    return created!;
  }

  /** The upload if it exists and belongs to `principal`; another principal's upload is `null`. */
  async get(id: string, principal: string): Promise<UploadRow | null> {
    const [row] = await this.db
      .select()
      .from(uploads)
      .where(and(eq(uploads.id, id), eq(uploads.principal, principal)));
    return row ?? null;
  }

  /** The caller's uploads, newest first, keyset-paginated on (created_at, id). */
  async list(q: ListUploadsQuery): Promise<{ items: UploadRow[]; nextCursor: string | null }> {
    const after = q.cursor ? decodeCursor(q.cursor) : null;
    const rows = await this.db
      .select()
      .from(uploads)
      .where(
        and(
          eq(uploads.principal, q.principal),
          q.status ? eq(uploads.status, q.status) : undefined,
          after
            ? or(
                lt(uploads.createdAt, after.createdAt),
                and(eq(uploads.createdAt, after.createdAt), lt(uploads.id, after.id)),
              )
            : undefined,
        ),
      )
      .orderBy(desc(uploads.createdAt), desc(uploads.id))
      .limit(q.limit + 1);
    const items = rows.slice(0, q.limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > q.limit && last ? encodeCursor(last) : null };
  }

  /**
   * Moves the upload from one of `from` to `to`, applying `patch`, in one statement.
   * Returns the updated row, or `null` when the upload was not in any of `from` (another
   * request got there first, or the transition is illegal).
   */
  async transition(
    id: string,
    from: readonly UploadStatus[],
    to: UploadStatus,
    patch: Partial<Pick<UploadRow, 's3UploadId' | 'etag' | 'failureReason' | 'completedAt'>> = {},
  ): Promise<UploadRow | null> {
    const [row] = await this.db
      .update(uploads)
      .set({ ...patch, status: to, updatedAt: sql`now()` })
      .where(and(eq(uploads.id, id), inArray(uploads.status, [...from])))
      .returning();
    return row ?? null;
  }

  /** Records the store's multipart upload id, only while the upload is still INITIATED and has none. */
  async setStoreUploadId(id: string, s3UploadId: string): Promise<UploadRow | null> {
    const [row] = await this.db
      .update(uploads)
      .set({ s3UploadId, updatedAt: sql`now()` })
      .where(and(eq(uploads.id, id), eq(uploads.status, 'INITIATED'), sql`${uploads.s3UploadId} IS NULL`))
      .returning();
    return row ?? null;
  }

  /**
   * Re-claims an upload stuck in `status` since before `olderThan` (its owner died), bumping
   * updated_at so that exactly one of several racers gets it.
   */
  async takeOverStale(id: string, status: UploadStatus, olderThan: Date): Promise<UploadRow | null> {
    const [row] = await this.db
      .update(uploads)
      .set({ updatedAt: sql`now()` })
      .where(and(eq(uploads.id, id), eq(uploads.status, status), lt(uploads.updatedAt, olderThan)))
      .returning();
    return row ?? null;
  }

  /** Forgets the store's multipart upload id once the store no longer has it (aborted). */
  async clearStoreUploadId(id: string, status: UploadStatus): Promise<void> {
    await this.db
      .update(uploads)
      .set({ s3UploadId: null, updatedAt: sql`now()` })
      .where(and(eq(uploads.id, id), eq(uploads.status, status)));
  }

  /** ABORTED uploads whose store upload was not yet discarded (the abort call failed). */
  async findUndiscarded(limit: number): Promise<UploadRow[]> {
    return this.db
      .select()
      .from(uploads)
      .where(and(eq(uploads.status, 'ABORTED'), sql`${uploads.s3UploadId} IS NOT NULL`))
      .limit(limit);
  }

  /** Uploads not yet terminal, and their declared bytes (for the incomplete-uploads gauges). */
  async incompleteTotals(): Promise<{ uploads: number; bytes: number }> {
    const [row] = await this.db
      .select({
        uploads: sql<number>`count(*)::int`,
        bytes: sql<number>`coalesce(sum(${uploads.fileSize}), 0)::float8`,
      })
      .from(uploads)
      .where(inArray(uploads.status, ['INITIATED', 'IN_PROGRESS', 'COMPLETING']));
    return row ?? { uploads: 0, bytes: 0 };
  }

  /** Non-terminal uploads whose deadline has passed, oldest first (for the expiry sweeper). */
  async findExpired(now: Date, limit: number): Promise<UploadRow[]> {
    return this.db
      .select()
      .from(uploads)
      .where(and(inArray(uploads.status, ['INITIATED', 'IN_PROGRESS']), lt(uploads.expiresAt, now)))
      .orderBy(asc(uploads.expiresAt))
      .limit(limit);
  }

  /**
   * Marks chunks PRESIGNED with a lease until `leaseUntil`. A chunk already UPLOADED keeps
   * its status (a client may re-send a chunk; its report will overwrite the ETag).
   */
  async leaseChunks(uploadId: string, leases: readonly ChunkLease[], leaseUntil: Date): Promise<void> {
    if (leases.length === 0) return;
    await this.db
      .insert(chunks)
      .values(
        leases.map((l) => ({
          uploadId,
          chunkIndex: l.chunkIndex,
          s3Key: l.s3Key,
          size: l.size,
          md5: l.md5 ?? null,
          sha256: l.sha256 ?? null,
          status: 'PRESIGNED' as const,
          leaseExpiresAt: leaseUntil,
        })),
      )
      .onConflictDoUpdate({
        target: [chunks.uploadId, chunks.chunkIndex],
        set: {
          status: sql`CASE WHEN ${chunks.status} = 'UPLOADED' THEN ${chunks.status} ELSE 'PRESIGNED' END`,
          leaseExpiresAt: sql`CASE WHEN ${chunks.status} = 'UPLOADED' THEN NULL ELSE excluded.lease_expires_at END`,
          md5: sql`coalesce(excluded.md5, ${chunks.md5})`,
          sha256: sql`coalesce(excluded.sha256, ${chunks.sha256})`,
          updatedAt: sql`now()`,
        },
      });
  }

  /** Records a chunk as uploaded (upsert): idempotent, frees its lease, keeps the newest ETag. */
  async markChunkUploaded(uploadId: string, report: ChunkReport): Promise<ChunkRow> {
    const retries = report.retries ?? 0;
    const [row] = await this.db
      .insert(chunks)
      .values({
        uploadId,
        chunkIndex: report.chunkIndex,
        s3Key: report.s3Key,
        status: 'UPLOADED',
        etag: report.etag,
        size: report.size,
        md5: report.md5 ?? null,
        sha256: report.sha256 ?? null,
        retryCount: retries,
        leaseExpiresAt: null,
      })
      .onConflictDoUpdate({
        target: [chunks.uploadId, chunks.chunkIndex],
        set: {
          status: 'UPLOADED',
          etag: sql`excluded.etag`,
          size: sql`excluded.size`,
          md5: sql`coalesce(excluded.md5, ${chunks.md5})`,
          sha256: sql`coalesce(excluded.sha256, ${chunks.sha256})`,
          retryCount: sql`${chunks.retryCount} + ${retries}`,
          leaseExpiresAt: null,
          updatedAt: sql`now()`,
        },
      })
      .returning();
    return row!;
  }

  /** Records a chunk the relay path gave up on; its lease is freed. */
  async markChunkFailed(uploadId: string, chunkIndex: number, s3Key: string, retries: number): Promise<void> {
    await this.db
      .insert(chunks)
      .values({ uploadId, chunkIndex, s3Key, status: 'FAILED', retryCount: retries })
      .onConflictDoUpdate({
        target: [chunks.uploadId, chunks.chunkIndex],
        set: {
          status: sql`CASE WHEN ${chunks.status} = 'UPLOADED' THEN ${chunks.status} ELSE 'FAILED' END`,
          retryCount: sql`${chunks.retryCount} + ${retries}`,
          leaseExpiresAt: null,
          updatedAt: sql`now()`,
        },
      });
  }

  /** The rows of some chunks of an upload (those never presigned nor reported have none). */
  async listChunksAt(uploadId: string, chunkIndexes: readonly number[]): Promise<ChunkRow[]> {
    if (chunkIndexes.length === 0) return [];
    return this.db
      .select()
      .from(chunks)
      .where(and(eq(chunks.uploadId, uploadId), inArray(chunks.chunkIndex, [...chunkIndexes])))
      .orderBy(asc(chunks.chunkIndex));
  }

  async listChunks(uploadId: string): Promise<ChunkRow[]> {
    return this.db.select().from(chunks).where(eq(chunks.uploadId, uploadId)).orderBy(asc(chunks.chunkIndex));
  }

  /**
   * Returns one upload's PRESIGNED chunks to PENDING — only those whose lease lapsed before
   * `before`, or all of them — and says how many: each was holding an inflight slot.
   */
  async endLeases(uploadId: string, before?: Date): Promise<number> {
    const freed = await this.db
      .update(chunks)
      .set({ status: 'PENDING', leaseExpiresAt: null, updatedAt: sql`now()` })
      .where(
        and(
          eq(chunks.uploadId, uploadId),
          eq(chunks.status, 'PRESIGNED'),
          before ? lt(chunks.leaseExpiresAt, before) : undefined,
        ),
      )
      .returning({ id: chunks.id });
    return freed.length;
  }

  /** Uploads (and their principals) with chunk leases that lapsed before `before`. */
  async findLapsedLeases(before: Date, limit: number): Promise<Array<{ uploadId: string; principal: string }>> {
    return this.db
      .selectDistinct({ uploadId: chunks.uploadId, principal: uploads.principal })
      .from(chunks)
      .innerJoin(uploads, eq(uploads.id, chunks.uploadId))
      .where(and(eq(chunks.status, 'PRESIGNED'), lt(chunks.leaseExpiresAt, before)))
      .limit(limit);
  }
}

function encodeCursor(row: UploadRow): string {
  return Buffer.from(JSON.stringify([row.createdAt.toISOString(), row.id])).toString('base64url');
}

/** Throws `InvalidCursorError` for anything that is not a cursor this repository made. */
function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(createdAt);
    const year = date.getUTCFullYear();
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
    // Only values PostgreSQL accepts: a real UUID and a timestamp within its range.
    if (Number.isNaN(date.getTime()) || year < 1970 || year > 9999 || !uuid.test(id)) throw new Error('bad cursor');
    return { createdAt: date, id };
  } catch {
    throw new InvalidCursorError(cursor);
  }
}

export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
  constructor(cursor: string) {
    super(`Invalid pagination cursor: ${JSON.stringify(cursor.slice(0, 64))}`);
  }
}
