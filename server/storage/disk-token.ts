import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ByteRange } from './object-store.ts';

/**
 * What a disk-store "presigned URL" authorises. The token plays the part of an S3
 * SigV4 query signature: every field is covered by the HMAC, so a holder can do
 * exactly this one request, once or many times, until `exp`.
 */
export type DiskTokenClaims =
  | {
      op: 'put';
      key: string;
      uploadId: string;
      partNumber: number;
      /** Exact byte count; like a signed `Content-Length` in S3. */
      contentLength: number;
      md5?: string;
      sha256?: string;
      /** Expiry, Unix seconds. */
      exp: number;
    }
  | { op: 'get'; key: string; range?: ByteRange; exp: number };

/** Why a token was refused; the HTTP layer maps it to `url_expired` / `signature_invalid`. */
export class DiskTokenError extends Error {
  override readonly name = 'DiskTokenError';
  constructor(readonly reason: 'expired' | 'invalid') {
    super(reason === 'expired' ? 'The presigned URL has expired.' : 'The presigned URL signature is invalid.');
  }
}

/** `base64url(JSON claims) + '.' + base64url(HMAC-SHA256(secret, first part))`. */
export function signDiskToken(secret: Buffer, claims: DiskTokenClaims): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${mac(secret, payload).toString('base64url')}`;
}

/** Returns the claims of a genuine, unexpired token; throws `DiskTokenError` otherwise. */
export function verifyDiskToken(secret: Buffer, token: string, nowMs: number): DiskTokenClaims {
  const dot = token.indexOf('.');
  if (dot <= 0) throw new DiskTokenError('invalid');
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1), 'base64url');
  const expected = mac(secret, payload);
  // timingSafeEqual throws on different lengths; the length of an HMAC is public anyway.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new DiskTokenError('invalid');
  let claims: DiskTokenClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as DiskTokenClaims;
  } catch {
    throw new DiskTokenError('invalid');
  }
  // Checked after the MAC so that a forged token never learns anything from the clock.
  if (typeof claims.exp !== 'number' || nowMs >= claims.exp * 1000) throw new DiskTokenError('expired');
  return claims;
}

function mac(secret: Buffer, payload: string): Buffer {
  return createHmac('sha256', secret).update(payload).digest();
}
