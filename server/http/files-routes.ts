import Router from '@koa/router';
import { type AuditLog, actorOf } from '../audit/audit-log.ts';
import type { DownloadService } from '../download/download-service.ts';
import { contentDisposition, ifRangeMatches, parseRange } from '../download/range.ts';
import { ApiError } from './errors.ts';
import { clientGone, type RequestState } from './middleware.ts';
import { uploadIdParam } from './upload-schemas.ts';

/** `/v1/files/{fileId}`: the download manifest, and the file streamed through the coordinator. */
export function filesRouter(downloads: DownloadService, audit: AuditLog): Router<RequestState> {
  const router = new Router<RequestState>();
  const fileId = (ctx: { params: Record<string, string> }) => {
    const r = uploadIdParam.safeParse(ctx.params.fileId);
    if (!r.success) throw new ApiError('file_not_found');
    return r.data;
  };

  router.get('/v1/files/:fileId', async (ctx) => {
    const id = fileId(ctx);
    const manifest = await downloads.manifest(ctx.state.principal!, id);
    await audit.record(actorOf(ctx), {
      action: 'file.manifest',
      uploadId: id,
      bytes: manifest.size,
      chunks: manifest.chunks.length,
    });
    ctx.body = manifest;
  });

  // RFC 9110: HEAD is GET without the body; @koa/router answers HEAD with the GET route.
  router.get('/v1/files/:fileId/content', async (ctx) => {
    const file = await downloads.file(ctx.state.principal!, fileId(ctx));
    const size = file.fileSize;
    const etag = file.etag!;
    const lastModified = file.completedAt ?? file.updatedAt;
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('ETag', etag);
    ctx.set('Last-Modified', lastModified.toUTCString());
    ctx.set('Content-Disposition', contentDisposition(file.fileName));
    ctx.set('Cache-Control', 'private, no-transform');

    const range = ifRangeMatches(ctx.get('if-range') || undefined, etag, lastModified)
      ? parseRange(ctx.get('range') || undefined, size)
      : ({ kind: 'full' } as const);
    if (range.kind === 'unsatisfiable') {
      throw new ApiError('range_not_satisfiable', undefined, { size }, { 'Content-Range': `bytes */${size}` });
    }
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size - 1];
    ctx.status = range.kind === 'partial' ? 206 : 200;
    if (range.kind === 'partial') ctx.set('Content-Range', `bytes ${start}-${end}/${size}`);
    ctx.type = file.contentType;
    if (ctx.method === 'HEAD') {
      ctx.length = end - start + 1;
      return;
    }
    await audit.record(actorOf(ctx), {
      action: 'file.download',
      uploadId: file.id,
      bytes: end - start + 1,
      details: range.kind === 'partial' ? { range: `${start}-${end}` } : {},
    });
    ctx.body = downloads.stream(file, start, end, clientGone(ctx));
    ctx.length = end - start + 1;
  });

  return router;
}
