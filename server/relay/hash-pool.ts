import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import { Piscina } from 'piscina';

/** Threads of the relay's hashing pool by default: one per core, at most 4. */
export function defaultRelayHashThreads(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

/** What the metrics read (`relay_hash_queue_depth`, `relay_hash_busy_threads`, `relay_hash_threads`). */
export interface HashPoolGauges {
  /** Jobs waiting for a thread. */
  readonly queued: number;
  /** Threads hashing now. */
  readonly busy: number;
  /** Threads at most. */
  readonly threads: number;
}

/**
 * The relay's MD5 work (verifying `Content-MD5` of every relayed chunk) off the request thread:
 * a piscina pool of `threads` threads running md5-worker.mjs; with 0 threads, in this thread.
 * A chunk held in memory is shared with the thread (SharedArrayBuffer: no copy, and this thread
 * keeps it to send the part); a spooled chunk is read by the thread from its file.
 */
export class RelayHashPool implements HashPoolGauges {
  readonly threads: number;
  readonly #pool: Piscina<{ shared: SharedArrayBuffer } | { file: string }, string> | undefined;
  #running = 0;

  constructor(threads: number) {
    if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`threads must be ≥ 0, got ${threads}`);
    this.threads = threads;
    this.#pool =
      threads === 0
        ? undefined
        : new Piscina({
            filename: new URL('./md5-worker.mjs', import.meta.url).href,
            minThreads: 0,
            maxThreads: threads,
            // Idle threads end after a minute; the next chunk starts one again (~30 ms).
            idleTimeout: 60_000,
            // The thread needs no TypeScript loader (the server's --import tsx would load one).
            execArgv: [],
          });
  }

  get queued(): number {
    return this.#pool?.queueSize ?? 0;
  }
  get busy(): number {
    return Math.min(this.threads, Math.max(0, this.#running - this.queued));
  }

  /** Memory for a chunk the pool can hash where it lies: a Buffer over a SharedArrayBuffer (plain memory without threads). */
  alloc(size: number): Buffer {
    return this.#pool ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size);
  }

  /** Base64 MD5 of `bytes` (from `alloc`) or of the file `file`. */
  async md5(input: { bytes: Buffer } | { file: string }, signal?: AbortSignal): Promise<string> {
    if (!this.#pool)
      return 'bytes' in input ? createHash('md5').update(input.bytes).digest('base64') : md5File(input.file);
    const task =
      'file' in input
        ? { file: input.file }
        : input.bytes.buffer instanceof SharedArrayBuffer &&
            input.bytes.byteOffset === 0 &&
            input.bytes.byteLength === input.bytes.buffer.byteLength
          ? { shared: input.bytes.buffer }
          : undefined;
    if (!task) throw new TypeError('RelayHashPool.md5 needs a buffer from alloc()');
    this.#running++;
    try {
      return await this.#pool.run(task, signal ? { signal } : {});
    } finally {
      this.#running--;
    }
  }

  async close(): Promise<void> {
    await this.#pool?.destroy();
  }
}

async function md5File(file: string): Promise<string> {
  const h = createHash('md5');
  for await (const d of createReadStream(file)) h.update(d as Buffer);
  return h.digest('base64');
}
