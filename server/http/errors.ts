/**
 * The error catalogue: every error the API answers with has a code, an HTTP status
 * and a default message here. Handlers and services throw `ApiError`s; exactly one
 * middleware (`errorMiddleware`) turns them into `{"error": {...}}`.
 */
export const ERRORS = {
  invalid_request: { status: 400, message: 'The request is malformed or fails validation.' },
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  bad_digest: { status: 400, message: 'The body does not match the Content-MD5 or checksum that was given.' },
  content_length_mismatch: { status: 400, message: 'Content-Length does not match the size of the chunk.' },
  unauthorized: { status: 401, message: 'A valid API key is required (Authorization: Bearer <key>).' },
  url_expired: { status: 403, message: 'The presigned URL has expired.' },
  signature_invalid: { status: 403, message: 'The presigned URL signature is invalid.' },
  quota_exceeded: {
    status: 403,
    message: "The request would exceed the principal's quota (see `quota`, `limit` and `current`).",
  },
  not_found: { status: 404, message: 'No such resource.' },
  upload_not_found: { status: 404, message: 'No such upload.' },
  file_not_found: { status: 404, message: 'No such file.' },
  method_not_allowed: { status: 405, message: 'Method not allowed on this resource.' },
  upload_not_in_progress: { status: 409, message: 'The upload is not in a state that allows this.' },
  missing_chunks: { status: 409, message: 'Some chunks have not been uploaded.' },
  idempotency_key_in_use: {
    status: 409,
    message: 'A request with this Idempotency-Key is still being processed; retry after Retry-After.',
  },
  request_timeout: { status: 408, message: 'The request was not received in time.' },
  precondition_failed: { status: 412, message: 'The object changed (If-Match failed).' },
  file_too_large: { status: 413, message: 'The file is larger than the maximum allowed size.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'Unsupported Content-Type.' },
  range_not_satisfiable: { status: 416, message: 'The requested range is not satisfiable.' },
  chunk_index_out_of_range: { status: 422, message: 'The chunk index is outside the upload.' },
  encryption_unsupported: {
    status: 422,
    message: 'The object store cannot store the upload with the requested server-side encryption.',
  },
  checksum_mismatch: { status: 422, message: 'The uploaded data does not match the declared size or checksum.' },
  idempotency_key_reused: {
    status: 422,
    message: 'The Idempotency-Key was already used with a different request.',
  },
  throttled: { status: 429, message: 'Too many requests; retry after the time in Retry-After.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  internal: { status: 500, message: 'Internal server error.' },
  object_store_unavailable: { status: 503, message: 'The object store is unavailable; retry later.' },
  database_unavailable: { status: 503, message: 'The database is unavailable; retry later.' },
  shutting_down: { status: 503, message: 'The server is shutting down; retry on another instance.' },
  browser_bundle_unavailable: {
    status: 503,
    message: 'The browser bundle is not built: run `npm run build:browser` on the server.',
  },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a catalogued code; `details` are merged into the response's `error` object. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  /** Koa's contract: exposed errors may show their message to the client. */
  readonly expose = true;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details: Record<string, unknown> = {},
    /** Extra response headers, e.g. `Retry-After` on `throttled`. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message ?? ERRORS[code].message);
    this.status = ERRORS[code].status;
  }
}

export function isApiError(err: unknown): err is ApiError {
  return err instanceof ApiError;
}
