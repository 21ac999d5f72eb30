/**
 * The SDK's errors. Every error it throws is a `ConveyorError` with a stable `code`; the
 * subclasses say which side failed. Shared by Node and browsers (no Node imports).
 */

/** Base class: `code` is the coordinator's error code, the store's (`BadDigest`…), or one of the SDK's own. */
export class ConveyorError extends Error {
  override name = 'ConveyorError';
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Thrown when the coordinator or the object store answers with a status that is not retried
 * (a 4xx other than 408/429, an expired URL after re-presigning failed), or when the retries of a
 * retryable status ran out. `code` is the server's `error.code` (coordinator) or the S3 `<Code>`.
 */
export class HTTPError extends ConveyorError {
  override name = 'HTTPError';
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly details: {
      /** Which side answered: the coordinator's API, or a presigned object-store URL. */
      origin: 'coordinator' | 'store';
      /** `X-Request-Id` (coordinator) or `x-amz-request-id` (S3), when present. */
      requestId?: string;
      /** `Retry-After` in milliseconds, when the response had one. */
      retryAfterMs?: number;
      /** The rest of the coordinator's `error` object (e.g. `missingChunks`, `limit`). */
      extra?: Record<string, unknown>;
    },
  ) {
    super(code, message);
  }
}

/** Thrown when a request could not be sent or its response not read (refused, reset, DNS…); `cause` has the original. */
export class NetworkError extends ConveyorError {
  override name = 'NetworkError';
  constructor(message: string, options: { cause?: unknown; code?: string } = {}) {
    super(options.code ?? 'network_error', message, { cause: options.cause });
  }
}

/** Thrown when no byte moved for `requestTimeoutMs` on a chunk request (a stalled connection), or a JSON call took longer than `apiTimeoutMs`. */
export class TimeoutError extends ConveyorError {
  override name = 'TimeoutError';
  constructor(
    readonly timeoutMs: number,
    message = `No progress for ${timeoutMs} ms`,
  ) {
    super('timeout', message);
  }
}

/** Thrown by a transfer that was aborted (its `AbortSignal` fired, or `abort()` was called). */
export class AbortError extends ConveyorError {
  override name = 'AbortError';
  constructor(reason?: unknown) {
    super('aborted', reason instanceof Error ? reason.message : 'The transfer was aborted', { cause: reason });
  }
}

/**
 * Thrown when bytes do not match their checksum: a downloaded chunk or file whose SHA-256 differs
 * from the manifest's, or an upload source that changed after it was hashed (the store refused
 * its Content-MD5: `BadDigest`).
 */
export class IntegrityError extends ConveyorError {
  override name = 'IntegrityError';
}

/** Thrown by a download when the file changed on the server while it was read (`412` on `If-Match`). */
export class FileChangedError extends ConveyorError {
  override name = 'FileChangedError';
  constructor(message = 'The file changed on the server during the download (If-Match failed)') {
    super('file_changed', message);
  }
}

/** The marker `cause` of the internal aborts that `pause()` uses; never seen by callers. */
export const PAUSED = Symbol('conveyor.paused');

export function isAbortLike(err: unknown): boolean {
  return err instanceof AbortError || (err instanceof Error && err.name === 'AbortError');
}
