import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Db, Tx } from './client.ts';
import { type ApiKeyRow, apiKeys } from './schema.ts';

/**
 * API keys are random 256-bit secrets, so a single SHA-256 is the right hash: there is
 * nothing to brute-force, and it allows an indexed lookup. Only the hash is stored.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A new key: `cvk_` + 43 base64url characters (256 random bits). */
export function generateApiKey(): string {
  return `cvk_${randomBytes(32).toString('base64url')}`;
}

export interface AuthenticatedKey {
  id: number;
  principal: string;
  /** May call /v1/admin/*. */
  admin: boolean;
}

export class ApiKeysRepository {
  constructor(private readonly db: Db | Tx) {}

  /** Creates a key for `principal` (generated unless given) and returns the plain key once. */
  async create(
    principal: string,
    opts: { key?: string; label?: string; admin?: boolean } = {},
  ): Promise<{ key: string; row: ApiKeyRow }> {
    const key = opts.key ?? generateApiKey();
    const [row] = await this.db
      .insert(apiKeys)
      .values({
        principal,
        keyHash: hashApiKey(key),
        keyPrefix: key.slice(0, 8),
        label: opts.label ?? null,
        admin: opts.admin ?? false,
      })
      .returning();
    return { key, row: row! };
  }

  /**
   * Ensures a configured key exists (API_KEYS seeding); repeated starts change nothing.
   * A key an admin revoked stays revoked: revocation must outlive a restart.
   * Returns false when the key exists for a different principal.
   */
  async seed(principal: string, key: string, label = 'seeded from API_KEYS', admin = false): Promise<boolean> {
    const keyHash = hashApiKey(key);
    await this.db
      .insert(apiKeys)
      .values({ principal, keyHash, keyPrefix: key.slice(0, 8), label, admin })
      .onConflictDoNothing({ target: apiKeys.keyHash });
    const [row] = await this.db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash));
    return row?.principal === principal;
  }

  /** The principal behind an active key, or `null`. */
  async authenticate(key: string): Promise<AuthenticatedKey | null> {
    const keyHash = hashApiKey(key);
    const [row] = await this.db
      .select({ id: apiKeys.id, principal: apiKeys.principal, keyHash: apiKeys.keyHash, admin: apiKeys.admin })
      .from(apiKeys)
      .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)));
    // The index lookup already matched; the constant-time comparison keeps the final
    // decision free of early-exit timing whatever the database does.
    if (!row || !timingSafeEqual(Buffer.from(row.keyHash, 'hex'), Buffer.from(keyHash, 'hex'))) return null;
    return { id: row.id, principal: row.principal, admin: row.admin };
  }

  /**
   * Records use at most once a minute per key, so authentication stays a read on the hot path:
   * this process skips the write for a key it recorded less than a minute ago, and the SQL
   * condition covers the other coordinators.
   */
  async touch(id: number): Promise<void> {
    const now = Date.now();
    const last = recentlyTouched.get(id);
    if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
    if (recentlyTouched.size >= 10_000) recentlyTouched.clear();
    recentlyTouched.set(id, now);
    await this.db
      .update(apiKeys)
      .set({ lastUsedAt: sql`now()` })
      .where(
        and(
          eq(apiKeys.id, id),
          sql`(${apiKeys.lastUsedAt} IS NULL OR ${apiKeys.lastUsedAt} < now() - interval '1 minute')`,
        ),
      );
  }

  async list(principal?: string): Promise<ApiKeyRow[]> {
    return this.db
      .select()
      .from(apiKeys)
      .where(principal ? eq(apiKeys.principal, principal) : undefined)
      .orderBy(asc(apiKeys.id));
  }

  /**
   * Revokes a key; true when it was active. Takes effect on the very next request: nothing
   * caches authentication (server/http/auth.ts reads this table on every request).
   */
  async revoke(id: number): Promise<boolean> {
    return (await this.revokeReturning(id)) !== null;
  }

  /** Revokes a key and returns its row (for the audit log), or `null` when it was not active. */
  async revokeReturning(id: number): Promise<ApiKeyRow | null> {
    const [row] = await this.db
      .update(apiKeys)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning();
    return row ?? null;
  }
}

const TOUCH_INTERVAL_MS = 60_000;
/** Key id → when this process last recorded its use (ms). */
const recentlyTouched = new Map<number, number>();
