import Router from '@koa/router';
import type { ApiKeysRepository } from '../../db/api-keys-repository.ts';
import { type AuditRepository, InvalidAuditCursorError } from '../../db/audit-repository.ts';
import type { ApiKeyRow, AuditRow } from '../../db/schema.ts';
import type { AdminActions } from '../audit/admin-actions.ts';
import { actorOf } from '../audit/audit-log.ts';
import type { UploadService } from '../uploads/upload-service.ts';
import { auditQuery, createKeyBody, keyIdParam, listKeysQuery, principalName, quotaBody } from './admin-schemas.ts';
import { requireAdmin } from './auth.ts';
import { ApiError } from './errors.ts';
import type { RequestState } from './middleware.ts';
import { parseOrThrow } from './schemas.ts';

export interface AdminRoutesDeps {
  audit: AuditRepository;
  apiKeys: ApiKeysRepository;
  actions: AdminActions;
  service: UploadService;
}

/**
 * `/v1/admin/*` (admin keys only; others get 404) and `/v1/usage` (any key: its own quota).
 * Key and quota changes are audited in the same transaction as the change.
 */
export function adminRouter(deps: AdminRoutesDeps): Router<RequestState> {
  const router = new Router<RequestState>();
  const body = (ctx: { request: unknown }) => (ctx.request as { body?: unknown }).body;

  router.get('/v1/usage', async (ctx) => {
    ctx.body = await deps.service.usage(ctx.state.principal!);
  });

  const admin = new Router<RequestState>({ prefix: '/v1/admin' });
  admin.use(requireAdmin());

  admin.get('/audit', async (ctx) => {
    const q = parseOrThrow(auditQuery, ctx.query);
    try {
      const page = await deps.audit.list({
        limit: q.limit,
        ...(q.principal ? { principal: q.principal } : {}),
        ...(q.since ? { since: new Date(q.since) } : {}),
        ...(q.until ? { until: new Date(q.until) } : {}),
        ...(q.cursor ? { cursor: q.cursor } : {}),
      });
      ctx.body = { entries: page.items.map(auditView), nextCursor: page.nextCursor };
    } catch (err) {
      if (err instanceof InvalidAuditCursorError) throw new ApiError('invalid_request', err.message);
      throw err;
    }
  });

  admin.get('/keys', async (ctx) => {
    const q = parseOrThrow(listKeysQuery, ctx.query);
    ctx.body = { keys: (await deps.apiKeys.list(q.principal)).map(keyView) };
  });

  admin.post('/keys', async (ctx) => {
    const input = parseOrThrow(createKeyBody, body(ctx));
    const { key, row } = await deps.actions.createKey(actorOf(ctx), input);
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { ...keyView(row), key };
  });

  admin.delete('/keys/:id', async (ctx) => {
    const id = parseOrThrow(keyIdParam, ctx.params.id);
    if (!(await deps.actions.revokeKey(actorOf(ctx), id)))
      throw new ApiError('not_found', 'No active key with that id.');
    ctx.status = 204;
  });

  admin.put('/principals/:principal/quota', async (ctx) => {
    const principal = parseOrThrow(principalName, ctx.params.principal);
    const overrides = parseOrThrow(quotaBody, body(ctx));
    await deps.actions.setQuota(actorOf(ctx), principal, overrides);
    ctx.body = await deps.service.usage(principal);
  });

  admin.get('/principals/:principal/quota', async (ctx) => {
    ctx.body = await deps.service.usage(parseOrThrow(principalName, ctx.params.principal));
  });

  router.use(admin.routes());
  return router;
}

export function auditView(r: AuditRow) {
  return {
    id: r.id,
    at: r.at.toISOString(),
    principal: r.principal,
    action: r.action,
    ...(r.target ? { target: r.target } : {}),
    ...(r.uploadId ? { uploadId: r.uploadId } : {}),
    ...(r.bytes !== null ? { bytes: r.bytes } : {}),
    ...(r.chunks !== null ? { chunks: r.chunks } : {}),
    ...(r.clientAddress ? { clientAddress: r.clientAddress } : {}),
    ...(r.requestId ? { requestId: r.requestId } : {}),
    details: r.details,
  };
}

/** A key as shown to admins: never the key, never its hash. */
export function keyView(k: ApiKeyRow) {
  return {
    id: k.id,
    principal: k.principal,
    keyPrefix: k.keyPrefix,
    label: k.label,
    admin: k.admin,
    createdAt: k.createdAt.toISOString(),
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
  };
}
