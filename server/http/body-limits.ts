import { bodyParser } from '@koa/bodyparser';
import type { Context, Next } from 'koa';

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * The largest JSON body each endpoint accepts. Larger → `413 payload_too_large`, decided from
 * Content-Length before a byte is read (raw-body), or while reading a chunked body once it
 * passes the limit. Sized from the request schemas' own maxima with room for JSON escaping:
 * - init: fileName ≤ 1,024 characters and ≤ 32 metadata entries of ≤ 64 + 1,024 characters;
 *   a `\uXXXX` escape is 6 bytes per character, so ~200 KiB is the worst legal body;
 * - presign: ≤ 100 entries of ~100 bytes;
 * - complete: ≤ 10,000 `{chunkIndex, etag}` of ~70 bytes with S3's 34-character ETags;
 * - everything else: a handful of short fields.
 * The relay PUT is not JSON: its body is limited by the chunk's exact Content-Length instead
 * (server/relay/relay-service.ts checks it before reading), so it skips this parser entirely.
 */
export const BODY_LIMITS: ReadonlyArray<{ method: string; path: RegExp; limit: number }> = [
  { method: 'POST', path: /^\/v1\/uploads\/?$/, limit: 256 * KiB },
  { method: 'POST', path: /^\/v1\/uploads\/[^/]+\/chunks\/presign\/?$/, limit: 64 * KiB },
  { method: 'POST', path: /^\/v1\/uploads\/[^/]+\/complete\/?$/, limit: 1 * MiB },
];

/** Any other endpoint: PATCH reports, admin calls, stray bodies on GET and DELETE. */
export const DEFAULT_BODY_LIMIT = 16 * KiB;

const RELAY_PUT = /^\/v1\/uploads\/[^/]+\/chunks\/[^/]+\/?$/;

/** The JSON body parser with the limit of the endpoint being called. */
export function jsonBodyWithLimits() {
  const parsers = new Map<number, ReturnType<typeof bodyParser>>();
  const parserFor = (limit: number) => {
    let p = parsers.get(limit);
    if (!p) {
      // DELETE and GET too (not parsed by default): a body is pointless there, but one sent is
      // bounded like any other instead of being ignored while it streams in.
      p = bodyParser({
        enableTypes: ['json'],
        jsonLimit: limit,
        encoding: 'utf-8',
        parsedMethods: ['POST', 'PUT', 'PATCH', 'DELETE', 'GET'],
      });
      parsers.set(limit, p);
    }
    return p;
  };
  return async (ctx: Context, next: Next) => {
    if (ctx.method === 'PUT' && RELAY_PUT.test(ctx.path)) return next();
    const rule = BODY_LIMITS.find((r) => r.method === ctx.method && r.path.test(ctx.path));
    return parserFor(rule?.limit ?? DEFAULT_BODY_LIMIT)(ctx, next);
  };
}
