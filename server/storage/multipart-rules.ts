import { createHash } from 'node:crypto';
import { ObjectStoreError } from './errors.ts';

/**
 * S3's multipart rules, for stores that have to enforce them themselves (the disk store).
 * Source: Amazon S3 User Guide, "Amazon S3 multipart upload limits", and the
 * CompleteMultipartUpload error list in the S3 API reference.
 */

/** "Part size: 5 MiB to 5 GiB. There is no minimum size limit on the last part of your multipart upload." */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** "Part numbers: 1 to 10,000 (inclusive)". */
export const MAX_PART_NUMBER = 10_000;

export function assertPartNumber(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_PART_NUMBER) {
    throw new RangeError(`partNumber must be an integer from 1 to ${MAX_PART_NUMBER}, got ${n}`);
  }
}

/** An ETag without quotes or weak prefix, for comparisons (`"abc"`, `abc` and `W/"abc"` are equal). */
export function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** A CompleteMultipartUpload part list must be non-empty and strictly ascending. */
export function assertPartList(listed: ReadonlyArray<{ partNumber: number }>): void {
  // S3 answers MalformedXML for an empty list; for callers it is the same mistake as a missing part.
  if (listed.length === 0) throw new ObjectStoreError('invalid_part', 'at least one part must be listed');
  // InvalidPartOrder: "The list of parts was not in ascending order. The parts list must be specified in order by part number."
  if (listed.some((p, i) => i > 0 && p.partNumber <= listed[i - 1]!.partNumber)) {
    throw new ObjectStoreError('invalid_part', 'parts must be listed in ascending order of part number');
  }
}

/**
 * Checks a CompleteMultipartUpload part list against the stored parts (`stored[i]` describes
 * `listed[i]`, `null` when missing), in S3's order: part order, then existence and ETags, then sizes.
 */
export function validateCompletion(
  listed: ReadonlyArray<{ partNumber: number; etag: string }>,
  stored: ReadonlyArray<{ etag: string; size: number } | null>,
): void {
  assertPartList(listed);
  for (const [i, part] of listed.entries()) {
    const found = stored[i];
    // InvalidPart: "One or more of the specified parts could not be found ... or the specified entity tag might not have matched".
    if (!found || unquote(found.etag) !== unquote(part.etag)) {
      throw new ObjectStoreError('invalid_part', `part ${part.partNumber} is missing or its ETag does not match`);
    }
  }
  for (const [i, part] of listed.entries()) {
    const { size } = stored[i]!;
    // EntityTooSmall: "Your proposed upload is smaller than the minimum allowed object size. Each part must be at least 5 MB in size, except the last part."
    if (i < listed.length - 1 && size < MIN_PART_SIZE) {
      throw new ObjectStoreError('entity_too_small', `part ${part.partNumber} is ${size} bytes, below 5 MiB`);
    }
  }
}

/** S3's ETag of a multipart object: hex MD5 of the concatenated binary part MD5s, "-", part count. */
export function multipartEtag(partEtags: readonly string[]): string {
  const md5s = partEtags.map((etag) => Buffer.from(unquote(etag), 'hex'));
  return `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${md5s.length}"`;
}
