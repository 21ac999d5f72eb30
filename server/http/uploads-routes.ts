import Router from '@koa/router';
import type { IdempotencyRepository } from '../../db/idempotency-repository.ts';
import type { UploadRow } from '../../db/schema.ts';
import { InvalidCursorError, type UploadsRepository } from '../../db/uploads-repository.ts';
import { type AuditLog, actorOf } from '../audit/audit-log.ts';
import type { RelayService } from '../relay/relay-service.ts';
import type { UploadService } from '../uploads/upload-service.ts';
import { ApiError } from './errors.ts';
import { idempotency } from './idempotency.ts';
import { clientGone, type RequestState } from './middleware.ts';
import { parseOrThrow } from './schemas.ts';
import {
  chunkIndexParam,
  completeBody,
  initUploadBody,
  listUploadsQuery,
  presignBody,
  reportBody,
  uploadIdParam,
} from './upload-schemas.ts';

export interface UploadsRoutesDeps {
  uploads: UploadsRepository;
  audit: AuditLog;
  relay: RelayService;
  idempotency: IdempotencyRepository;
  service: UploadService;
}

/** The /v1/uploads resource (API.md). Handlers parse, call the service, shape the response. */
export function uploadsRouter(deps: UploadsRoutesDeps): Router<RequestState> {
  const router = new Router<RequestState>();
  const once = idempotency(deps.idempotency);
  const { service, audit } = deps;
  const body = (ctx: { request: unknown }) => (ctx.request as { body?: unknown }).body;
  const id = (ctx: { params: Record<string, string> }) => parseOrThrow(uploadIdParam, ctx.params.uploadId);

  router.post('/v1/uploads', once, async (ctx) => {
    const input = parseOrThrow(initUploadBody, body(ctx));
    const u = await service.init(ctx.state.principal!, input);
    await audit.record(actorOf(ctx), {
      action: 'upload.init',
      uploadId: u.id,
      bytes: u.fileSize,
      chunks: u.totalChunks,
      details: { fileName: u.fileName, ...(u.encryption ? { encryption: u.encryption.mode } : {}) },
    });
    ctx.status = 201;
    ctx.set('Location', `/v1/uploads/${u.id}`);
    ctx.body = {
      uploadId: u.id,
      chunkSize: u.chunkSize,
      totalChunks: u.totalChunks,
      status: u.status,
      expiresAt: u.expiresAt.toISOString(),
    };
  });

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

  router.get('/v1/uploads/:uploadId', async (ctx) => {
    const { upload, uploadedChunks, missingChunks } = await service.status(ctx.state.principal!, id(ctx));
    ctx.body = {
      ...uploadSummary(upload),
      uploadedChunks,
      missingChunks,
      // A completed upload is a file: what a resuming client needs to finish without completing again.
      ...(upload.status === 'COMPLETED' ? { fileId: upload.id, etag: upload.etag } : {}),
    };
  });

  router.post('/v1/uploads/:uploadId/chunks/presign', async (ctx) => {
    const uploadId = id(ctx);
    const { chunks } = parseOrThrow(presignBody, body(ctx));
    const batch = await service.presignBatch(ctx.state.principal!, uploadId, chunks);
    await audit.record(actorOf(ctx), {
      action: 'chunks.presign',
      uploadId,
      bytes: batch.bytes,
      chunks: batch.chunks.length,
      details: { chunkIndexes: compactRanges(batch.chunks.map((c) => c.chunkIndex)) },
    });
    ctx.body = { chunks: batch.chunks };
  });

  router.patch('/v1/uploads/:uploadId/chunks/:chunkIndex', async (ctx) => {
    const uploadId = id(ctx);
    const chunkIndex = parseOrThrow(chunkIndexParam, ctx.params.chunkIndex);
    await service.report(ctx.state.principal!, uploadId, chunkIndex, parseOrThrow(reportBody, body(ctx)));
    ctx.status = 204;
  });

  router.put('/v1/uploads/:uploadId/chunks/:chunkIndex', async (ctx) => {
    try {
      const declared = ctx.get('content-length');
      const uploadId = id(ctx);
      const stored = await deps.relay.relay({
        principal: ctx.state.principal!,
        uploadId,
        chunkIndex: parseOrThrow(chunkIndexParam, ctx.params.chunkIndex),
        contentLength: /^\d{1,16}$/.test(declared) ? Number(declared) : undefined,
        contentMd5: ctx.get('content-md5') || undefined,
        body: ctx.req,
        signal: clientGone(ctx),
      });
      await audit.record(actorOf(ctx), {
        action: 'chunk.relay',
        uploadId,
        bytes: stored.size,
        chunks: 1,
        details: { chunkIndex: stored.chunkIndex },
      });
      ctx.body = stored;
    } catch (err) {
      // Refused before the body was read: close the connection rather than drain gigabytes.
      // (HTTP/1 only: RFC 9113 §8.2.2 forbids the header in HTTP/2, where the stream is reset instead.)
      if (!ctx.req.complete && ctx.req.httpVersionMajor < 2) ctx.set('Connection', 'close');
      throw err;
    }
  });

  router.post('/v1/uploads/:uploadId/complete', once, async (ctx) => {
    const uploadId = id(ctx);
    parseOrThrow(completeBody, body(ctx));
    const done = await service.complete(ctx.state.principal!, uploadId);
    await audit.record(actorOf(ctx), { action: 'upload.complete', uploadId, bytes: done.size });
    ctx.body = done;
  });

  router.delete('/v1/uploads/:uploadId', once, async (ctx) => {
    const uploadId = id(ctx);
    await service.abort(ctx.state.principal!, uploadId);
    await audit.record(actorOf(ctx), { action: 'upload.abort', uploadId });
    ctx.status = 204;
  });

  return router;
}

/** `[0,1,2,5,7,8]` → `"0-2,5,7-8"`: a batch's chunk indexes, short enough for an audit row. */
export function compactRanges(indexes: readonly number[]): string {
  const sorted = [...indexes].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
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
    metadata: u.metadata,
    ...(u.encryption ? { encryption: u.encryption } : {}),
    createdAt: u.createdAt.toISOString(),
    updatedAt: u.updatedAt.toISOString(),
    expiresAt: u.expiresAt.toISOString(),
    ...(u.completedAt ? { completedAt: u.completedAt.toISOString() } : {}),
  };
}
