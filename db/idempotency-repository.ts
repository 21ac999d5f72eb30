import { and, eq, isNull, lt, sql } from 'drizzle-orm';
import type { Db } from './client.ts';
import { idempotencyKeys } from './schema.ts';

export type IdempotencyClaim =
  /** First use: the caller processes the request, then calls `complete` (or `release`). */
  | { state: 'claimed' }
  /** Seen before with the same request: answer with the stored response. */
  | { state: 'replay'; status: number; body: unknown }
  /** Seen before with a different request: `422 idempotency_key_reused`. */
  | { state: 'mismatch' }
  /** The first request with this key is still being processed. */
  | { state: 'in_progress' };

export interface ClaimInput {
  principal: string;
  key: string;
  /** `METHOD path`: a key used on another endpoint is a different request. */
  scope: string;
  requestHash: string;
  ttlSeconds: number;
  /** Random per request; `release` with it frees only this request's own unfinished claim. */
  token: string;
  /**
   * How long an unfinished claim holds the key unless `heartbeat` extends it: a coordinator that
   * dies mid-request must not lock the key for the whole TTL. @default ttlSeconds
   */
  leaseSeconds?: number;
}

/** Idempotency keys (API.md: kept at least 24 h), scoped per principal. */
export class IdempotencyRepository {
  constructor(private readonly db: Db) {}

  async claim(input: ClaimInput): Promise<IdempotencyClaim> {
    const { principal, key } = input;
    // An expired record is as good as none: drop it so the key can be claimed afresh.
    await this.db
      .delete(idempotencyKeys)
      .where(
        and(
          eq(idempotencyKeys.principal, principal),
          eq(idempotencyKeys.key, key),
          lt(idempotencyKeys.expiresAt, sql`now()`),
        ),
      );
    const inserted = await this.db
      .insert(idempotencyKeys)
      .values({
        principal,
        key,
        scope: input.scope,
        requestHash: input.requestHash,
        claimToken: input.token,
        expiresAt: sql`now() + make_interval(secs => ${input.leaseSeconds ?? input.ttlSeconds})`,
      })
      .onConflictDoNothing()
      .returning({ key: idempotencyKeys.key });
    if (inserted.length > 0) return { state: 'claimed' };

    const [row] = await this.db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.principal, principal), eq(idempotencyKeys.key, key)));
    if (!row) return this.claim(input); // released between our insert and select: try again
    if (row.scope !== input.scope || row.requestHash !== input.requestHash) return { state: 'mismatch' };
    if (row.responseStatus === null) return { state: 'in_progress' };
    return { state: 'replay', status: row.responseStatus, body: row.responseBody };
  }

  /** Stores the response the first request produced (kept `ttlSeconds` from now when given). */
  async complete(principal: string, key: string, status: number, body: unknown, ttlSeconds?: number): Promise<void> {
    await this.db
      .update(idempotencyKeys)
      .set({
        responseStatus: status,
        responseBody: body ?? null,
        ...(ttlSeconds !== undefined ? { expiresAt: sql`now() + make_interval(secs => ${ttlSeconds})` } : {}),
      })
      .where(and(eq(idempotencyKeys.principal, principal), eq(idempotencyKeys.key, key)));
  }

  /** Extends an unfinished claim's lease: its request is still running. */
  async heartbeat(principal: string, key: string, leaseSeconds: number): Promise<void> {
    await this.db
      .update(idempotencyKeys)
      .set({ expiresAt: sql`now() + make_interval(secs => ${leaseSeconds})` })
      .where(
        and(
          eq(idempotencyKeys.principal, principal),
          eq(idempotencyKeys.key, key),
          isNull(idempotencyKeys.responseStatus),
        ),
      );
  }

  /**
   * Forgets the unfinished claim made with `token` (its request failed, or the claim's own answer
   * was lost), so a retry with the same key runs again. Another request's claim is never touched.
   */
  async release(principal: string, key: string, token: string): Promise<void> {
    await this.db
      .delete(idempotencyKeys)
      .where(
        and(
          eq(idempotencyKeys.principal, principal),
          eq(idempotencyKeys.key, key),
          eq(idempotencyKeys.claimToken, token),
          isNull(idempotencyKeys.responseStatus),
        ),
      );
  }

  /** Deletes expired records; the number deleted. */
  async purgeExpired(): Promise<number> {
    const rows = await this.db
      .delete(idempotencyKeys)
      .where(lt(idempotencyKeys.expiresAt, sql`now()`))
      .returning({ key: idempotencyKeys.key });
    return rows.length;
  }
}
