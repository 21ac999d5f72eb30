/**
 * `Range` header parsing for one byte range, per RFC 9110 §14 (https://www.rfc-editor.org/rfc/rfc9110#section-14).
 * Pure: no I/O, no HTTP objects.
 */

export type RangeResult =
  /** No Range header, or one this server ignores: send the whole representation (200). */
  | { kind: 'full' }
  /** One satisfiable range: send 206 with `Content-Range: bytes start-end/size`. */
  | { kind: 'partial'; start: number; end: number }
  /** Send 416 with `Content-Range: bytes *\/size`. */
  | { kind: 'unsatisfiable' };

const RANGE_SPEC = /^(\d*)-(\d*)$/;

/**
 * Resolves a Range header against a representation of `size` bytes.
 *
 * - "An origin server MUST ignore a Range header field that contains a range unit it does not
 *   understand" (§14.2): any unit but `bytes` → full.
 * - `bytes=a-b` (b clamped to size-1), `bytes=a-`, `bytes=-n` (the last n bytes) (§14.1.2).
 * - "If all of the preconditions are true ... and the set of ranges requested has been rejected
 *   due to invalid ranges ... the server SHOULD send a 416" (§15.5.17): malformed byte ranges,
 *   a first position at or past the end, and `bytes=-0` are 416.
 * - "A server MAY ignore the Range header field" (§14.2): several ranges (multipart/byteranges)
 *   are answered with the full representation.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined || header.trim() === '') return { kind: 'full' };
  const eq = header.indexOf('=');
  if (eq < 0) return { kind: 'unsatisfiable' };
  if (header.slice(0, eq).trim().toLowerCase() !== 'bytes') return { kind: 'full' };
  const specs = header
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim());
  if (specs.length !== 1) {
    return specs.every((s) => RANGE_SPEC.test(s)) ? { kind: 'full' } : { kind: 'unsatisfiable' };
  }
  const m = RANGE_SPEC.exec(specs[0]!);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'unsatisfiable' };
  const [first, last] = [m[1]!, m[2]!];
  if (first === '') {
    // suffix-range: "the last N bytes"; a representation shorter than N is sent whole.
    const n = Number(last);
    if (!Number.isSafeInteger(n) || n === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (!Number.isSafeInteger(start) || start >= size) return { kind: 'unsatisfiable' };
  if (last === '') return { kind: 'partial', start, end: size - 1 };
  const end = Number(last);
  // "A range-spec is invalid if the last-pos value is present and less than the first-pos" (§14.1.1)
  if (!Number.isSafeInteger(end) || end < start) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

/**
 * `If-Range` (§13.1.5): the range applies only when the validator matches the current
 * representation — a strong ETag compared strongly, or an HTTP-date equal to Last-Modified.
 * Otherwise the whole representation is sent.
 */
export function ifRangeMatches(header: string | undefined, etag: string, lastModified?: Date): boolean {
  if (header === undefined) return true;
  const v = header.trim();
  if (v.startsWith('"')) return v === etag;
  if (v.startsWith('W/')) return false; // weak validators never match for If-Range
  const date = Date.parse(v);
  return lastModified !== undefined && !Number.isNaN(date) && Math.floor(lastModified.getTime() / 1000) * 1000 === date;
}

/** `Content-Disposition: attachment` with the file name, safely encoded (RFC 6266 + RFC 8187). */
export function contentDisposition(fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_').replace(/[\r\n]/g, '') || 'download';
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
