import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RelayHashPool } from './hash-pool.ts';

/**
 * A relayed chunk's bytes, kept where a retry can read them again: in memory while the global
 * byte budget allows, otherwise in a spool file. Never unbounded memory.
 */
export interface HeldBody {
  size: number;
  /** Base64 MD5 of the bytes, computed by the hashing pool once they are all in. */
  md5: string;
  /** A fresh stream (or the buffer) for one upload attempt. */
  open(): Readable | Buffer;
  release(): Promise<void>;
}

/** A byte budget shared by all relayed chunks held in memory. */
export class ByteBudget {
  #used = 0;
  constructor(readonly limit: number) {}
  tryTake(n: number): boolean {
    if (this.#used + n > this.limit) return false;
    this.#used += n;
    return true;
  }
  give(n: number): void {
    this.#used = Math.max(0, this.#used - n);
  }
  get used(): number {
    return this.#used;
  }
}

export class BodyLengthError extends Error {
  override readonly name = 'BodyLengthError';
  constructor(
    readonly received: number,
    readonly expected: number,
  ) {
    super(`received ${received} bytes, Content-Length said ${expected}`);
  }
}

/**
 * Receives exactly `size` bytes from `source` into memory (budget permitting) or a spool file,
 * then has `hashing` compute their MD5 (in its threads: this one only copies bytes).
 */
export async function receiveChunk(
  source: AsyncIterable<Buffer>,
  size: number,
  budget: ByteBudget,
  spoolDir: string,
  hashing: RelayHashPool,
): Promise<HeldBody> {
  let received = 0;
  const counted = async function* () {
    for await (const chunk of source) {
      received += chunk.length;
      if (received > size) throw new BodyLengthError(received, size);
      yield chunk;
    }
    if (received !== size) throw new BodyLengthError(received, size);
  };

  if (budget.tryTake(size)) {
    try {
      const incoming = hashing.alloc(size);
      let at = 0;
      for await (const chunk of counted()) {
        chunk.copy(incoming, at);
        at += chunk.length;
      }
      const { md5: digest, bytes: buffer } = await hashing.md5Held(incoming);
      let released = false;
      return {
        size,
        md5: digest,
        open: () => buffer,
        release: async () => {
          if (!released) budget.give(size);
          released = true;
        },
      };
    } catch (err) {
      budget.give(size);
      throw err;
    }
  }

  await fs.mkdir(spoolDir, { recursive: true });
  const file = path.join(spoolDir, `${randomUUID()}.part`);
  let digest: string;
  try {
    await pipeline(Readable.from(counted()), createWriteStream(file, { mode: 0o600 }));
    digest = await hashing.md5File(file);
  } catch (err) {
    await fs.rm(file, { force: true });
    throw err;
  }
  return {
    size,
    md5: digest,
    open: () => createReadStream(file),
    release: () => fs.rm(file, { force: true }),
  };
}
