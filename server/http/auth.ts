import type { Context, Next } from 'koa';
import type { ApiKeysRepository } from '../../db/api-keys-repository.ts';
import { ApiError } from './errors.ts';

/** RFC 9110 §11.1: the scheme name is case-insensitive. */
const BEARER = /^Bearer +([\x21-\x7e]{1,512})$/i;

/**
 * `Authorization: Bearer <api key>` on every /v1 request (API.md). Sets
 * `ctx.state.principal` and `ctx.state.admin`. A revoked key fails on its very next request:
 * every request reads api_keys (one indexed lookup), nothing is cached, on purpose
 * (test/security/key-revocation.test.ts).
 */
export function requireApiKey(keys: ApiKeysRepository) {
  return async (ctx: Context, next: Next) => {
    const match = BEARER.exec(ctx.get('authorization'));
    const found = match?.[1] ? await keys.authenticate(match[1]) : null;
    if (!found) throw new ApiError('unauthorized', undefined, {}, { 'WWW-Authenticate': 'Bearer realm="conveyor"' });
    ctx.state.principal = found.principal;
    ctx.state.admin = found.admin;
    // Best effort: a failed bookkeeping write must not fail the request.
    keys.touch(found.id).catch((err) => ctx.state.log?.warn({ err }, 'could not record key use'));
    await next();
  };
}

/**
 * Only admin keys pass (`keys create --admin`, ADMIN_API_KEYS). Anyone else gets `404 not_found`,
 * as for a path that does not exist: the admin surface is not advertised to tenants.
 */
export function requireAdmin() {
  return async (ctx: Context, next: Next) => {
    if (ctx.state.admin !== true) throw new ApiError('not_found');
    await next();
  };
}
