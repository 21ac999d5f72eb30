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

/**
 * A refused CreateMultipartUpload that asked for SSE, as `encryption_unsupported` when the answer
 * is about the encryption: InvalidArgument/InvalidRequest (e.g. Ceph RGW: "Server Side Encryption
 * with KMS managed key requires HTTP header x-amz-server-side-encryption-aws-kms-key-id"), AWS's
 * `KMS.*` codes (unknown, disabled key), and Ceph's testing/Vault backends, which answer an
 * unknown key with 403 InvalidAccessKeyId "Failed to retrieve the actual key, kms-keyid: …".
 * Anything else (network, 5xx, a real credentials problem) is passed on unchanged.
 */
export function encryptionRefusal(err: unknown, encryption: { mode: string }): unknown {
  const mapped = toObjectStoreError(err);
  if (mapped !== err) return mapped;
  const e = err as SdkError;
  const code = e?.Code ?? e?.name ?? '';
  const message = e?.message ?? '';
  const aboutEncryption =
    code === 'InvalidArgument' ||
    code === 'InvalidRequest' ||
    code === 'InvalidEncryptionAlgorithmError' ||
    code.startsWith('KMS.') ||
    (code === 'InvalidAccessKeyId' && /kms/i.test(message));
  if (!aboutEncryption) return err;
  return new ObjectStoreError('encryption_unsupported', `${encryption.mode}: ${code}: ${message}`, { cause: err });
}
