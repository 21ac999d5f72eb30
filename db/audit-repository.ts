import { and, desc, eq, gte, lt, lte, or } from 'drizzle-orm';
import type { Db, Tx } from './client.ts';
import { type AuditRow, auditLog } from './schema.ts';

export type NewAuditEntry = Omit<typeof auditLog.$inferInsert, 'id' | 'at'>;

export interface AuditQuery {
  /** Entries where this principal acted or was acted upon (key changes). */
  principal?: string;
  /** Inclusive lower bound of `at`. */
  since?: Date;
  /** Exclusive upper bound of `at`. */
  until?: Date;
  limit: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

/**
 * The append-only audit log. There is no update or delete here, and the database refuses
 * them anyway (trigger in migration 0002), so not even a bug in this process can rewrite history.
 */
export class AuditRepository {
  constructor(private readonly db: Db | Tx) {}

  async append(entry: NewAuditEntry): Promise<AuditRow> {
    const [row] = await this.db.insert(auditLog).values(entry).returning();
    return row!;
  }

  /** Newest first, keyset-paginated on id (ids grow with time). */
  async list(q: AuditQuery): Promise<{ items: AuditRow[]; nextCursor: string | null }> {
    const before = q.cursor ? decodeAuditCursor(q.cursor) : undefined;
    const rows = await this.db
      .select()
      .from(auditLog)
      .where(
        and(
          q.principal ? or(eq(auditLog.principal, q.principal), eq(auditLog.target, q.principal)) : undefined,
          q.since ? gte(auditLog.at, q.since) : undefined,
          q.until ? lt(auditLog.at, q.until) : undefined,
          before !== undefined ? lte(auditLog.id, before - 1) : undefined,
        ),
      )
      .orderBy(desc(auditLog.id))
      .limit(q.limit + 1);
    const items = rows.slice(0, q.limit);
    const last = items.at(-1);
    return {
      items,
      nextCursor: rows.length > q.limit && last ? Buffer.from(`a${last.id}`).toString('base64url') : null,
    };
  }
}

/** Throws `InvalidAuditCursorError` for anything that is not a cursor `list` made. */
function decodeAuditCursor(cursor: string): number {
  const m = /^a(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new InvalidAuditCursorError(cursor);
  return Number(m[1]);
}

export class InvalidAuditCursorError extends Error {
  override readonly name = 'InvalidAuditCursorError';
  constructor(cursor: string) {
    super(`Invalid pagination cursor: ${JSON.stringify(cursor.slice(0, 64))}`);
  }
}
