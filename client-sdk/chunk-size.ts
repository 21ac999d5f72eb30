/** S3 multipart limits (AWS S3 User Guide, "Amazon S3 multipart upload limits"). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10_000;

/**
 * The chunk size an upload asks for: `preferred` (default 8 MiB, the coordinator's default),
 * raised to whole MiB when the file would need more than 10,000 parts. The client decides it
 * (rather than letting the server pick) because it hashes every chunk before `init`.
 */
export function pickChunkSize(fileSize: number, preferred = 8 * 1024 * 1024): number {
  const MiB = 1024 * 1024;
  let size = Math.max(MIN_PART_SIZE, preferred);
  const needed = Math.ceil(fileSize / MAX_PARTS);
  if (needed > size) size = Math.ceil(needed / MiB) * MiB;
  if (size > MAX_PART_SIZE)
    throw new RangeError(`A file of ${fileSize} bytes cannot be split into 10,000 parts of ≤ 5 GiB`);
  return size;
}

export function chunkCount(fileSize: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(fileSize / chunkSize));
}

/** Offset and length of chunk `i`; the last may be shorter, and a zero-byte file has one empty chunk. */
export function chunkRange(fileSize: number, chunkSize: number, i: number): { start: number; length: number } {
  const start = i * chunkSize;
  return { start, length: Math.max(0, Math.min(chunkSize, fileSize - start)) };
}
