import Router from '@koa/router';
import { z } from 'zod';
import { UPLOAD_STATUSES, type UploadRow } from '../../db/schema.ts';
import { InvalidCursorError, type UploadsRepository } from '../../db/uploads-repository.ts';
import { ApiError } from './errors.ts';
import type { RequestState } from './middleware.ts';
import { parseOrThrow } from './schemas.ts';

export const listUploadsQuery = z.strictObject({
  status: z.enum(UPLOAD_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(512).optional(),
});

export interface UploadsRoutesDeps {
  uploads: UploadsRepository;
}

/** The /v1/uploads resource. Handlers parse, call the repository or a service, shape the response. */
export function uploadsRouter(deps: UploadsRoutesDeps): Router<RequestState> {
  const router = new Router<RequestState>();

  router.get('/v1/uploads', async (ctx) => {
    const q = parseOrThrow(listUploadsQuery, ctx.query);
    try {
      const page = await deps.uploads.list({ principal: ctx.state.principal!, ...q });
      ctx.body = { uploads: page.items.map(uploadSummary), nextCursor: page.nextCursor };
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new ApiError('invalid_request', err.message);
      throw err;
    }
  });

  return router;
}

export function uploadSummary(u: UploadRow) {
  return {
    uploadId: u.id,
    fileName: u.fileName,
    fileSize: u.fileSize,
    contentType: u.contentType,
    chunkSize: u.chunkSize,
    totalChunks: u.totalChunks,
    status: u.status,
    createdAt: u.createdAt.toISOString(),
    updatedAt: u.updatedAt.toISOString(),
    expiresAt: u.expiresAt.toISOString(),
    ...(u.completedAt ? { completedAt: u.completedAt.toISOString() } : {}),
  };
}
