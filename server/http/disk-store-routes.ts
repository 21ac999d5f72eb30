import Router from '@koa/router';
import type { Context } from 'koa';
import type { DiskObjectStore } from '../storage/disk-object-store.ts';
import { type DiskTokenClaims, DiskTokenError } from '../storage/disk-token.ts';
import { isObjectStoreError, type ObjectStoreErrorCode } from '../storage/errors.ts';
import type { ByteRange } from '../storage/object-store.ts';
import { ApiError, type ErrorCode } from './errors.ts';

/**
 * The local-disk store's stand-in for S3's data plane: the targets of its "presigned" URLs.
 * No bearer auth here: as with an S3 presigned URL, the HMAC token in the query is the credential,
 * and it binds the method, key, part, exact length and digests.
 */
export function diskStoreRouter(store: DiskObjectStore): Router {
  const router = new Router({ prefix: '/v1/disk-store' });

  router.put('/parts', async (ctx) => {
    const claims = claimsFor(store, ctx, 'put');
    // S3 signs Content-Length into the URL; a different length fails before any byte is stored.
    const header = ctx.get('content-length');
    if (header === '' || !/^\d+$/.test(header) || Number(header) !== claims.contentLength) {
      throw new ApiError('content_length_mismatch', undefined, { expected: claims.contentLength });
    }
    // A signed header must be sent with exactly the signed value (SigV4: SignatureDoesNotMatch).
    const md5 = signedHeader(ctx, 'content-md5', claims.md5);
    const sha256 = signedHeader(ctx, 'x-amz-checksum-sha256', claims.sha256);
    const { etag } = await store
      .uploadPart({
        key: claims.key,
        uploadId: claims.uploadId,
        partNumber: claims.partNumber,
        // Streamed straight to a temp file: the body is never held in memory.
        body: ctx.req,
        contentLength: claims.contentLength,
        md5,
        sha256,
      })
      .catch(rethrowAsApiError);
    ctx.status = 200;
    ctx.set('ETag', etag);
    ctx.body = '';
  });

  router.get('/objects', async (ctx) => {
    const claims = claimsFor(store, ctx, 'get');
    const range = requestedRange(ctx, claims);
    const ifMatch = ctx.get('if-match') || undefined;
    const object = await store.getObject({ key: claims.key, range, ifMatch }).catch(async (err: unknown) => {
      if (isObjectStoreError(err, 'invalid_range')) {
        // RFC 9110 §15.5.17: a 416 "SHOULD generate a Content-Range header field ... unsatisfied-range".
        const size = (await store.headObject(claims.key))?.size ?? 0;
        throw new ApiError('range_not_satisfiable', err.message, {}, { 'Content-Range': `bytes */${size}` });
      }
      return rethrowAsApiError(err);
    });
    ctx.set('Accept-Ranges', 'bytes');
    ctx.set('ETag', object.etag);
    if (object.contentType) ctx.type = object.contentType;
    if (range) {
      ctx.status = 206;
      const end = Math.min(range.end, object.totalSize - 1);
      ctx.set('Content-Range', `bytes ${range.start}-${end}/${object.totalSize}`);
    } else {
      ctx.status = 200;
    }
    if (ctx.method === 'HEAD') {
      // Koa does not consume a body on HEAD; close the file now instead of leaking the descriptor.
      object.body.destroy();
      ctx.length = object.contentLength;
      return;
    }
    ctx.body = object.body;
    ctx.length = object.contentLength;
  });

  return router;
}

function claimsFor<Op extends DiskTokenClaims['op']>(
  store: DiskObjectStore,
  ctx: Context,
  op: Op,
): Extract<DiskTokenClaims, { op: Op }> {
  const token = ctx.query.token;
  if (typeof token !== 'string' || token === '') throw new ApiError('signature_invalid', 'The token is missing.');
  let claims: DiskTokenClaims;
  try {
    claims = store.verifyToken(token);
  } catch (err) {
    if (err instanceof DiskTokenError) {
      throw new ApiError(err.reason === 'expired' ? 'url_expired' : 'signature_invalid');
    }
    throw err;
  }
  // A PUT token must not read objects and vice versa, like S3's signed HTTP method.
  if (claims.op !== op) throw new ApiError('signature_invalid');
  return claims as Extract<DiskTokenClaims, { op: Op }>;
}

/**
 * The digest to verify: the signed value (which the header must repeat), or an unsigned header
 * the client chose to send, which S3 verifies too.
 */
function signedHeader(ctx: Context, name: string, signed: string | undefined): string | undefined {
  const sent = ctx.get(name) || undefined;
  if (signed !== undefined && sent !== signed) {
    throw new ApiError('signature_invalid', `The signed ${name} header is missing or differs.`);
  }
  return sent;
}

/** The signed range when the token has one (a different Range header is refused), else the client's. */
function requestedRange(ctx: Context, claims: Extract<DiskTokenClaims, { op: 'get' }>): ByteRange | undefined {
  const header = ctx.get('range');
  if (claims.range) {
    const signed = `bytes=${claims.range.start}-${claims.range.end}`;
    if (header !== '' && header !== signed)
      throw new ApiError('signature_invalid', 'Range differs from the signed one.');
    return claims.range;
  }
  return header === '' ? undefined : parseSimpleRange(header);
}

/**
 * One `bytes=a-b` or `bytes=a-` range (what the SDK sends). RFC 9110 §14.2 lets a server ignore a
 * Range header it does not support, so anything else (suffix or multiple ranges) gets the whole object.
 */
function parseSimpleRange(header: string): ByteRange | undefined {
  const m = /^bytes=(\d+)-(\d*)$/.exec(header.trim());
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
  return end >= start ? { start, end } : undefined;
}

const API_CODES: Record<ObjectStoreErrorCode, ErrorCode> = {
  no_such_upload: 'upload_not_found',
  not_found: 'not_found',
  bad_digest: 'bad_digest',
  invalid_part: 'invalid_request',
  entity_too_small: 'invalid_request',
  precondition_failed: 'precondition_failed',
  invalid_range: 'range_not_satisfiable',
  encryption_unsupported: 'encryption_unsupported',
};

function rethrowAsApiError(err: unknown): never {
  if (isObjectStoreError(err)) throw new ApiError(API_CODES[err.code], err.message);
  throw err;
}
