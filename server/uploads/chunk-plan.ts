/**
 * Chunk-size arithmetic for multipart uploads: pure functions, no I/O.
 *
 * The limits are Amazon S3's (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html):
 *   "Part size: 5 MiB to 5 GiB. There is no minimum size limit on the last part of your multipart upload."
 *   "Maximum number of parts per upload: 10,000"
 *   "Maximum object size: 5 TiB" (the page now says 48.8 TiB, which is exactly 10,000 parts of 5 GiB).
 * The object-size ceiling is not hard-coded here: the caller's `maxFileSize` (config `MAX_FILE_SIZE`, default 5 TiB)
 * sets it, and no plan can exceed MAX_PART_SIZE × MAX_PARTS anyway.
 *
 * Chunk i (0-based) is S3 part i + 1 and covers bytes [i × chunkSize, min((i + 1) × chunkSize, fileSize)).
 */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** S3: "Part size: 5 MiB to 5 GiB" — every chunk but the last is at least this big. */
export const MIN_PART_SIZE = 5 * MiB;
/** S3: "Part size: 5 MiB to 5 GiB" — no chunk may be bigger. */
export const MAX_PART_SIZE = 5 * GiB;
/** S3: "Maximum number of parts per upload: 10,000" (part numbers 1 to 10,000). */
export const MAX_PARTS = 10_000;

/** The layout of a file in chunks. */
export interface ChunkPlan {
  /** The size of every chunk but the last. */
  chunkSize: number;
  /** 1 to MAX_PARTS; a zero-byte file is one empty chunk. */
  totalChunks: number;
  /** 1 to chunkSize bytes; 0 only for a zero-byte file. */
  lastChunkSize: number;
}

export interface ChunkPlanInput {
  /** Bytes in the file: a safe integer from 0 to `maxFileSize`. */
  fileSize: number;
  /** The client's chunk size: validated against the S3 limits, never adjusted. */
  requestedChunkSize?: number | undefined;
  /** Used when the client has none; grown (to a whole MiB) when the file would need more than MAX_PARTS chunks. */
  defaultChunkSize: number;
  /** The largest file accepted (config `MAX_FILE_SIZE`). */
  maxFileSize: number;
}

/** A byte range of the file; `end` is inclusive (`end === start - 1` for the empty chunk of a zero-byte file). */
export interface ChunkRange {
  start: number;
  end: number;
  size: number;
}

/**
 * Thrown by `planChunks` when the client's input cannot be planned: `invalid_request` for a malformed size or a
 * chunk size outside the S3 limits, `file_too_large` for a file above `maxFileSize` or above what 10,000 parts hold.
 * The message says why and echoes the value. (A bad `defaultChunkSize` or `maxFileSize` is a server bug and throws
 * a plain `RangeError` instead.)
 */
export class ChunkPlanError extends Error {
  override readonly name = 'ChunkPlanError';
  constructor(
    readonly code: 'invalid_request' | 'file_too_large',
    message: string,
  ) {
    super(message);
  }
}

/** "5242880 (5 MiB)": exact bytes for machines, a unit for people when the value is a whole one. */
function bytes(n: number): string {
  for (const [unit, size] of [
    ['TiB', TiB],
    ['GiB', GiB],
    ['MiB', MiB],
  ] as const) {
    if (Number.isSafeInteger(n) && n >= size && n % size === 0) return `${n} (${n / size} ${unit})`;
  }
  return String(n);
}

const isValidPartSize = (n: number) => Number.isSafeInteger(n) && n >= MIN_PART_SIZE && n <= MAX_PART_SIZE;

/** Chooses (or validates the client's) chunk size for a file of `fileSize` bytes. Throws `ChunkPlanError`. */
export function planChunks(input: ChunkPlanInput): ChunkPlan {
  const { fileSize, requestedChunkSize, defaultChunkSize, maxFileSize } = input;
  if (!isValidPartSize(defaultChunkSize)) {
    throw new RangeError(
      `defaultChunkSize must be an integer from ${MIN_PART_SIZE} to ${MAX_PART_SIZE}, got ${defaultChunkSize}`,
    );
  }
  if (!Number.isSafeInteger(maxFileSize) || maxFileSize < 0) {
    throw new RangeError(`maxFileSize must be a safe integer ≥ 0, got ${maxFileSize}`);
  }

  if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
    throw new ChunkPlanError('invalid_request', `fileSize must be a whole number of bytes ≥ 0, got ${fileSize}.`);
  }
  if (fileSize > maxFileSize) {
    throw new ChunkPlanError(
      'file_too_large',
      `fileSize ${fileSize} is above the maximum file size, ${bytes(maxFileSize)}.`,
    );
  }
  // S3: at most 10,000 parts of at most 5 GiB, so no chunk size can hold a bigger file.
  if (fileSize > MAX_PART_SIZE * MAX_PARTS) {
    throw new ChunkPlanError(
      'file_too_large',
      `fileSize ${fileSize} is above ${MAX_PART_SIZE * MAX_PARTS} bytes, the most ${MAX_PARTS} parts of ${bytes(MAX_PART_SIZE)} can hold.`,
    );
  }
  // The smallest chunk size that splits the file into at most MAX_PARTS chunks; ≤ MAX_PART_SIZE after the check above.
  const smallestThatFits = Math.max(MIN_PART_SIZE, Math.ceil(fileSize / MAX_PARTS));

  let chunkSize: number;
  if (requestedChunkSize !== undefined) {
    // Below 5 MiB is refused even when the file would be a single (last, so exempt) chunk: one rule, as S3 states it.
    if (!isValidPartSize(requestedChunkSize)) {
      throw new ChunkPlanError(
        'invalid_request',
        `chunkSize must be a whole number of bytes from ${bytes(MIN_PART_SIZE)} to ${bytes(MAX_PART_SIZE)}, got ${requestedChunkSize}.`,
      );
    }
    if (requestedChunkSize < smallestThatFits) {
      throw new ChunkPlanError(
        'invalid_request',
        `chunkSize ${requestedChunkSize} would split fileSize ${fileSize} into ${Math.ceil(fileSize / requestedChunkSize)} ` +
          `chunks, more than the ${MAX_PARTS} allowed; use at least ${bytes(smallestThatFits)}, or omit chunkSize.`,
      );
    }
    chunkSize = requestedChunkSize;
  } else if (defaultChunkSize >= smallestThatFits) {
    // Also when the file is smaller than one chunk: the single chunk is simply short.
    chunkSize = defaultChunkSize;
  } else {
    // Rounded up to a whole MiB, which is friendlier for clients; MAX_PART_SIZE is a whole MiB, so still ≤ 5 GiB.
    chunkSize = Math.ceil(smallestThatFits / MiB) * MiB;
  }

  if (fileSize === 0) return { chunkSize, totalChunks: 1, lastChunkSize: 0 };
  const totalChunks = Math.ceil(fileSize / chunkSize);
  return { chunkSize, totalChunks, lastChunkSize: fileSize - (totalChunks - 1) * chunkSize };
}

/**
 * The exact byte count of chunk `chunkIndex` (0-based) of a `fileSize`-byte file laid out by `plan`.
 * Throws `RangeError` for an index outside the plan or a plan that does not describe `fileSize` bytes
 * (callers check client-supplied indexes first and answer `chunk_index_out_of_range`).
 */
export function expectedChunkSize(plan: ChunkPlan, fileSize: number, chunkIndex: number): number {
  const { chunkSize, totalChunks, lastChunkSize } = plan;
  if ((totalChunks - 1) * chunkSize + lastChunkSize !== fileSize) {
    throw new RangeError(`the plan ${JSON.stringify(plan)} does not describe a file of ${fileSize} bytes`);
  }
  if (!Number.isSafeInteger(chunkIndex) || chunkIndex < 0 || chunkIndex >= totalChunks) {
    throw new RangeError(`chunkIndex ${chunkIndex} is outside 0..${totalChunks - 1}`);
  }
  return chunkIndex === totalChunks - 1 ? lastChunkSize : chunkSize;
}

/** The byte range of chunk `chunkIndex` (0-based), `end` inclusive as in an HTTP `Range: bytes=start-end`. */
export function chunkRange(plan: ChunkPlan, fileSize: number, chunkIndex: number): ChunkRange {
  const size = expectedChunkSize(plan, fileSize, chunkIndex);
  const start = chunkIndex * plan.chunkSize;
  return { start, end: start + size - 1, size };
}
