import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
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
}

export class ApiKeysRepository {
  constructor(private readonly db: Db) {}

  /** Creates a key for `principal` (generated unless given) and returns the plain key once. */
  async create(
    principal: string,
    opts: { key?: string; label?: string } = {},
  ): Promise<{ key: string; row: ApiKeyRow }> {
    const key = opts.key ?? generateApiKey();
    const [row] = await this.db
      .insert(apiKeys)
      .values({ principal, keyHash: hashApiKey(key), keyPrefix: key.slice(0, 8), label: opts.label ?? null })
      .returning();
    return { key, row: row! };
  }

  /**
   * Ensures a configured key exists (API_KEYS seeding); repeated starts change nothing.
   * A key an admin revoked stays revoked: revocation must outlive a restart.
   * Returns false when the key exists for a different principal.
   */
  async seed(principal: string, key: string, label = 'seeded from API_KEYS'): Promise<boolean> {
    const keyHash = hashApiKey(key);
    await this.db
      .insert(apiKeys)
      .values({ principal, keyHash, keyPrefix: key.slice(0, 8), label })
      .onConflictDoNothing({ target: apiKeys.keyHash });
    const [row] = await this.db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash));
    return row?.principal === principal;
  }

  /** The principal behind an active key, or `null`. */
  async authenticate(key: string): Promise<AuthenticatedKey | null> {
    const keyHash = hashApiKey(key);
    const [row] = await this.db
      .select({ id: apiKeys.id, principal: apiKeys.principal, keyHash: apiKeys.keyHash })
      .from(apiKeys)
      .where(and(eq(apiKeys.keyHash, keyHash), isNull(apiKeys.revokedAt)));
    // The index lookup already matched; the constant-time comparison keeps the final
    // decision free of early-exit timing whatever the database does.
    if (!row || !timingSafeEqual(Buffer.from(row.keyHash, 'hex'), Buffer.from(keyHash, 'hex'))) return null;
    return { id: row.id, principal: row.principal };
  }

  /** Records use at most once a minute per key, so authentication stays a read on the hot path. */
  async touch(id: number): Promise<void> {
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

  /** Revokes a key; true when it was active. Takes effect on the next request. */
  async revoke(id: number): Promise<boolean> {
    const rows = await this.db
      .update(apiKeys)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning({ id: apiKeys.id });
    return rows.length > 0;
  }
}
