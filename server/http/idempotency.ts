import { createHash } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { IdempotencyRepository } from '../../db/idempotency-repository.ts';
import { ApiError } from './errors.ts';
import type { RequestState } from './middleware.ts';
import { parseOrThrow } from './schemas.ts';
import { idempotencyKeyHeader } from './upload-schemas.ts';

/** API.md: "Keys are kept at least 24 h." */
const TTL_SECONDS = 24 * 3600;

/**
 * `Idempotency-Key` (API.md): a repeat with the same key and the same body gets the first
 * response (same status, same body, plus `Idempotent-Replayed: true`); the same key with
 * a different body or on another endpoint is `422 idempotency_key_reused`. Only successful
 * responses are stored: an error (a transient 5xx, a `409 missing_chunks` the client then
 * fixes) must not be replayed forever, so the key is released and the retry runs again.
 */
export function idempotency(repo: IdempotencyRepository) {
  return async (ctx: Context & { state: RequestState }, next: Next) => {
    const raw = ctx.get('idempotency-key');
    if (!raw) return next();
    const key = parseOrThrow(idempotencyKeyHeader, raw);
    const principal = ctx.state.principal!;
    const claim = await repo.claim({
      principal,
      key,
      scope: `${ctx.method} ${ctx.path}`,
      requestHash: hashBody((ctx.request as { body?: unknown }).body),
      ttlSeconds: TTL_SECONDS,
    });
    switch (claim.state) {
      case 'replay':
        ctx.status = claim.status;
        ctx.body = claim.body ?? undefined;
        ctx.set('Idempotent-Replayed', 'true');
        return;
      case 'mismatch':
        throw new ApiError('idempotency_key_reused');
      case 'in_progress':
        throw new ApiError('idempotency_key_in_use', undefined, {}, { 'Retry-After': '1' });
    }
    let stored = false;
    try {
      await next();
      if (ctx.status >= 200 && ctx.status < 300) {
        await repo.complete(principal, key, ctx.status, ctx.body ?? null);
        stored = true;
      }
    } finally {
      if (!stored) await repo.release(principal, key).catch(() => {});
    }
  };
}

/** SHA-256 of the body in a canonical form (object keys sorted), so key order does not matter. */
export function hashBody(body: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(body ?? null, (_k, v) => (isPlainObject(v) ? sortKeys(v) : v)))
    .digest('hex');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sortKeys(v: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, v[k]]),
  );
}
