import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { StoreUnavailableError } from '../storage/errors.ts';
import { ApiError, ERRORS, isApiError } from './errors.ts';

/** What every request carries in `ctx.state`. */
export interface RequestState {
  requestId: string;
  log: Logger;
  /** Set by the auth middleware on /v1 routes. */
  principal?: string;
  /** Set by the auth middleware: the key may call /v1/admin/*. */
  admin?: boolean;
}

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Outermost middleware: assigns the request id (echoing a well-formed client one), times
 * the request for `http_request_duration_seconds` under its route template (never the
 * raw path, which would explode label cardinality) and writes one access-log line.
 */
export function requestContext(logger: Logger, metrics: Metrics) {
  return async (ctx: Context, next: Next) => {
    const started = process.hrtime.bigint();
    const given = ctx.get('x-request-id');
    const requestId = CLIENT_REQUEST_ID.test(given) ? given : randomUUID();
    ctx.state.requestId = requestId;
    ctx.state.log = logger.child({ requestId });
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // @koa/router records the matched route template (e.g. /v1/uploads/:uploadId) here.
      const matched = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute;
      const route = matched === undefined ? 'unmatched' : String(matched);
      metrics.httpRequestDuration.observe({ method: ctx.method, route, status: String(ctx.status) }, seconds);
      const line = { method: ctx.method, route, path: ctx.path, status: ctx.status, ms: Math.round(seconds * 1000) };
      if (ctx.status >= 500) ctx.state.log.warn(line, 'request');
      else ctx.state.log.debug(line, 'request');
    }
  };
}

/**
 * The object store timed out, could not be reached, or answered 5xx after the S3 client's own
 * retries (an SDK error with `$metadata.httpStatusCode`).
 */
function isStoreDown(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' && status >= 500;
}

/** Codes of PostgreSQL/pg errors that mean "the database is not there right now". */
const DB_DOWN = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08003',
  '08006',
]);

/** What pg says, without a code, when the pool cannot get or keep a connection. */
const DB_DOWN_MESSAGE =
  /^(timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error|Client was closed)/;

/**
 * True when `err` or one of its causes says the database is not reachable. drizzle-orm wraps
 * every failed query in a `DrizzleQueryError` whose `cause` is pg's error, so the code is
 * one level (or more) down.
 */
function isDatabaseDown(err: unknown): boolean {
  for (
    let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    depth++
  ) {
    if (typeof e.code === 'string' && DB_DOWN.has(e.code)) return true;
    if (typeof e.message === 'string' && DB_DOWN_MESSAGE.test(e.message)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/**
 * The one place errors become responses: `{"error": {"code", "message", ...details}}`.
 * Unknown errors are logged with the request id and answered `500 internal` without
 * internals; an unreachable database is `503` with `Retry-After`.
 */
export function errorMiddleware() {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new ApiError('not_found');
    } catch (err) {
      const apiErr = toApiError(err);
      if (apiErr.status >= 500) {
        (ctx.state.log as Logger | undefined)?.error({ err }, 'request failed');
      }
      ctx.status = apiErr.status;
      for (const [name, value] of Object.entries(apiErr.headers)) {
        // RFC 9113 §8.2.2: connection-specific header fields are malformed in HTTP/2 (GOAWAY does that job).
        if (name.toLowerCase() === 'connection' && ctx.req.httpVersionMajor >= 2) continue;
        ctx.set(name, value);
      }
      ctx.body = { error: { ...apiErr.details, code: apiErr.code, message: apiErr.message } };
    }
  };
}

function toApiError(err: unknown): ApiError {
  if (isApiError(err)) return err;
  const e = err as { status?: number; type?: string; code?: string; message?: string; expose?: boolean };
  // co-body / raw-body errors from the JSON body parser
  if (e?.type === 'entity.too.large') return new ApiError('payload_too_large');
  if (e?.type === 'entity.parse.failed') return new ApiError('invalid_json');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported')
    return new ApiError('unsupported_media_type');
  if (e?.type === 'request.aborted') return new ApiError('invalid_request', 'The client aborted the request.');
  // Before the database check: a socket error from S3 carries the same ECONNREFUSED-style codes.
  if (isStoreDown(err)) return new ApiError('object_store_unavailable', undefined, {}, { 'Retry-After': '2' });
  if (isDatabaseDown(err)) return new ApiError('database_unavailable', undefined, {}, { 'Retry-After': '2' });
  // zlib refusing a body sent with Content-Encoding it does not actually have.
  // (Brotli's decoder says so with codes such as ERR__ERROR_FORMAT_PADDING_2.)
  if (e?.code === 'Z_DATA_ERROR' || e?.code === 'Z_BUF_ERROR' || e?.code?.startsWith('ERR__ERROR_FORMAT')) {
    return new ApiError('invalid_request', 'The body could not be decoded with its Content-Encoding.');
  }
  // Deliberate HTTP errors from Koa and its body parser carry a client-error status.
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    if (e.status === 400) return new ApiError(err instanceof SyntaxError ? 'invalid_json' : 'invalid_request');
    if (e.status === 413) return new ApiError('payload_too_large');
    if (e.status === 415) return new ApiError('unsupported_media_type');
    const code = (Object.keys(ERRORS) as Array<keyof typeof ERRORS>).find((c) => ERRORS[c].status === e.status);
    return new ApiError(code ?? 'invalid_request');
  }
  return new ApiError('internal');
}

/** An AbortSignal that fires when the client disconnects before its response is complete. */
export function clientGone(ctx: Context): AbortSignal {
  const ac = new AbortController();
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) ac.abort(new Error('client disconnected'));
  });
  return ac.signal;
}
