import type { Context, Next } from 'koa';
import type { ApiKeysRepository } from '../../db/api-keys-repository.ts';
import { ApiError } from './errors.ts';

/** RFC 9110 §11.1: the scheme name is case-insensitive. */
const BEARER = /^Bearer +([\x21-\x7e]{1,512})$/i;

/**
 * `Authorization: Bearer <api key>` on every /v1 request (API.md). Sets
 * `ctx.state.principal`. A revoked key fails on its next request: nothing is cached.
 */
export function requireApiKey(keys: ApiKeysRepository) {
  return async (ctx: Context, next: Next) => {
    const match = BEARER.exec(ctx.get('authorization'));
    const found = match?.[1] ? await keys.authenticate(match[1]) : null;
    if (!found) throw new ApiError('unauthorized', undefined, {}, { 'WWW-Authenticate': 'Bearer realm="conveyor"' });
    ctx.state.principal = found.principal;
    // Best effort: a failed bookkeeping write must not fail the request.
    keys.touch(found.id).catch((err) => ctx.state.log?.warn({ err }, 'could not record key use'));
    await next();
  };
}
