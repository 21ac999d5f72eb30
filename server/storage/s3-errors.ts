import { ObjectStoreError, type ObjectStoreErrorCode } from './errors.ts';

/**
 * S3 error codes callers act on, mapped to ObjectStoreError codes (S3 API reference, "Error
 * responses → List of error codes"). Everything else (throttling the SDK gave up on, 5xx,
 * network errors) is rethrown unchanged so callers treat it as transient.
 */
const BY_S3_CODE: Record<string, ObjectStoreErrorCode> = {
  NoSuchUpload: 'no_such_upload',
  NoSuchKey: 'not_found',
  NotFound: 'not_found',
  BadDigest: 'bad_digest',
  InvalidDigest: 'bad_digest',
  InvalidPart: 'invalid_part',
  InvalidPartOrder: 'invalid_part',
  EntityTooSmall: 'entity_too_small',
  PreconditionFailed: 'precondition_failed',
  InvalidRange: 'invalid_range',
};

interface SdkError {
  name?: string;
  Code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The S3 error code of an SDK error, falling back to the HTTP status for bodiless (HEAD) answers. */
export function s3ErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as SdkError;
  const code = e.Code ?? e.name;
  if (code && code in BY_S3_CODE) return code;
  switch (e.$metadata?.httpStatusCode) {
    case 404:
      return 'NotFound';
    case 412:
      return 'PreconditionFailed';
    case 416:
      return 'InvalidRange';
    default:
      return code;
  }
}

/**
 * Converts an SDK error into an ObjectStoreError when it is one callers act on.
 * `multipart`: the call addressed an upload. Ceph RGW answers `NoSuchKey` (404) instead of
 * `NoSuchUpload` for an upload that was aborted, so there any 404 means "no such upload".
 */
export function toObjectStoreError(err: unknown, opts: { multipart?: boolean } = {}): unknown {
  const s3Code = s3ErrorCode(err);
  if (s3Code === undefined) return err;
  let code = BY_S3_CODE[s3Code];
  if (opts.multipart && (code === 'not_found' || code === 'no_such_upload')) code = 'no_such_upload';
  if (code === undefined) return err;
  const message = (err as SdkError).message || s3Code;
  return new ObjectStoreError(code, `${s3Code}: ${message}`, { cause: err });
}
