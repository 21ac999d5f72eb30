/**
 * Errors an ObjectStore throws for conditions callers act on. Anything else
 * (network failures, throttling the SDK gave up on, 5xx) propagates as is and is
 * treated as transient by callers.
 */
export type ObjectStoreErrorCode =
  /** The multipart upload does not exist (never created, completed or aborted). */
  | 'no_such_upload'
  /** The object does not exist. */
  | 'not_found'
  /** The bytes did not match the given Content-MD5 / checksum. */
  | 'bad_digest'
  /** A part listed for completion is missing, or its ETag does not match. */
  | 'invalid_part'
  /** A part other than the last is below the store's 5 MiB minimum. */
  | 'entity_too_small'
  /** `ifMatch` did not match the object's ETag. */
  | 'precondition_failed'
  /** A byte range outside the object. */
  | 'invalid_range'
  /** The store refused, or did not confirm, the requested server-side encryption (mode, KMS key). */
  | 'encryption_unsupported';

export class ObjectStoreError extends Error {
  override readonly name = 'ObjectStoreError';
  constructor(
    readonly code: ObjectStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isObjectStoreError(err: unknown, code?: ObjectStoreErrorCode): err is ObjectStoreError {
  return err instanceof ObjectStoreError && (code === undefined || err.code === code);
}

/**
 * The store did not answer in time, or could not be reached (refused, reset, DNS): transient, and
 * answered `503 object_store_unavailable` with Retry-After. `cause` is the underlying error.
 */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

/** A failure to reach the store at all (no HTTP answer): a socket error code, no HTTP status. */
export function isNetworkFailure(err: unknown): boolean {
  const e = err as { code?: unknown; $metadata?: { httpStatusCode?: number } } | undefined;
  return typeof e?.code === 'string' && NETWORK_CODES.has(e.code) && e.$metadata?.httpStatusCode === undefined;
}
