import { createHash, randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { IdempotencyRepository } from '../../db/idempotency-repository.ts';
import { ApiError } from './errors.ts';
import type { RequestState } from './middleware.ts';
import { parseOrThrow } from './schemas.ts';
import { idempotencyKeyHeader } from './upload-schemas.ts';

/** API.md: "Keys are kept at least 24 h." */
const TTL_SECONDS = 24 * 3600;
/**
 * An unfinished claim holds its key this long, renewed every HEARTBEAT_MS while its request
 * runs: if the coordinator dies (SIGKILL, OOM) the key frees itself within the lease instead of
 * answering `409 idempotency_key_in_use` to every retry for 24 h.
 */
const CLAIM_LEASE_SECONDS = 30;
const HEARTBEAT_MS = 10_000;

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
    const token = randomUUID();
    let claim: Awaited<ReturnType<IdempotencyRepository['claim']>>;
    try {
      claim = await repo.claim({
        principal,
        key,
        token,
        scope: `${ctx.method} ${ctx.path}`,
        requestHash: hashBody((ctx.request as { body?: unknown }).body),
        ttlSeconds: TTL_SECONDS,
        leaseSeconds: CLAIM_LEASE_SECONDS,
      });
    } catch (err) {
      // The claim may have been written with its answer lost: free it, or the client's retry
      // would meet `409 idempotency_key_in_use` until the lease ran out.
      await releaseClaim(repo, principal, key, token);
      throw err;
    }
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
    const heartbeat = setInterval(() => {
      repo.heartbeat(principal, key, CLAIM_LEASE_SECONDS).catch(() => {});
    }, HEARTBEAT_MS);
    try {
      await next();
      if (ctx.status >= 200 && ctx.status < 300) {
        await repo.complete(principal, key, ctx.status, ctx.body ?? null, TTL_SECONDS);
        stored = true;
      }
    } finally {
      clearInterval(heartbeat);
      if (!stored) await releaseClaim(repo, principal, key, token);
    }
  };
}

/**
 * Frees the key of a request that failed. A failure is often the database's own (a reset
 * connection), so the release is tried again on fresh connections: twice before the answer, then
 * in the background for up to RELEASE_RETRY_MS. A key left held would answer `409
 * idempotency_key_in_use` to the client's retries until its lease ran out.
 */
async function releaseClaim(repo: IdempotencyRepository, principal: string, key: string, token: string) {
  const attempt = () =>
    repo.release(principal, key, token).then(
      () => true,
      () => false,
    );
  if ((await attempt()) || (await sleep(50).then(attempt))) return;
  void (async () => {
    for (let delay = 100, waited = 0; waited < RELEASE_RETRY_MS; waited += delay, delay = Math.min(delay * 2, 2000)) {
      await sleep(delay);
      if (await attempt()) return;
    }
    // Still unreachable: the lease (CLAIM_LEASE_SECONDS) frees the key.
  })();
}

const RELEASE_RETRY_MS = 15_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

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
