import { AbortError } from './errors.ts';
import { type HashProvider, toBase64 } from './hashing.ts';
import type { ChunkSource } from './sources.ts';
import { type WorkerPool, WorkerUnavailableError } from './worker-pool.ts';

/** Largest read while hashing without keeping the bytes: a 5 GiB chunk is never read whole. */
const HASH_SLICE = 1024 * 1024;

/** One chunk read and hashed. */
export interface PreparedChunk {
  /** Base64 MD5 (`Content-MD5`) and SHA-256 of the chunk. */
  md5: string;
  sha256: string;
  /** The chunk's bytes, when they were kept: send exactly these (they are what was hashed). */
  bytes: Uint8Array | undefined;
  /**
   * Gives the bytes' share of the in-flight budget back; call once the request that sent them is
   * over. `reuse`: nothing refers to the bytes any more (the request succeeded), so their buffer
   * may be read into again, sparing an allocation. @default false
   */
  release(opts?: { reuse?: boolean }): void;
}

export interface ChunkHasherOptions {
  /** Hashing for the in-thread path (workers = 0, or a source no worker can read). */
  hashes: HashProvider;
  /** Threads that read and hash; undefined: everything in this thread. */
  pool?: WorkerPool | undefined;
  /** Bytes of kept chunks held at once, across every upload of the client. @default 256 MiB */
  maxInflightBytes?: number;
}

export interface PrepareOptions {
  /** Keep the bytes (they are then sent from memory); otherwise only the digests come back. */
  keep: boolean;
  signal?: AbortSignal | undefined;
}

/** How long spare buffers outlive the last kept chunk. */
const SPARE_TTL_MS = 2_000;

/**
 * Reads and hashes chunks, and whole sources, in the pool's threads when there is one and the
 * source can be read there (a file descriptor, a Blob), otherwise in this thread. A thread reads
 * the range itself, so only the digests and (with `keep`) the buffer cross threads, the buffer
 * transferred rather than copied. Kept bytes are bounded by `maxInflightBytes` across uploads; one
 * upload holds at most its pool's level × chunk size, since each running chunk holds one chunk.
 * Buffers of chunks sent are read into again (they go back to a thread with the next job): a new
 * 8 MiB ArrayBuffer per chunk would have V8 run a full GC every few chunks for the external memory.
 * A platform where threads cannot start (a CSP without `worker-src blob:`) falls back to this thread.
 */
export class ChunkHasher {
  readonly budget: InflightBytes;
  readonly #hashes: HashProvider;
  #pool: WorkerPool | undefined;
  /** Buffers free to read into; with the bytes held, never more than the budget. */
  #spares: ArrayBuffer[] = [];
  #spareBytes = 0;
  #spareTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: ChunkHasherOptions) {
    this.#hashes = options.hashes;
    this.#pool = options.pool;
    this.budget = new InflightBytes(options.maxInflightBytes ?? 256 * 1024 * 1024);
  }

  /** Threads hashing (0: this thread). */
  get workers(): number {
    return this.#pool?.size ?? 0;
  }

  /** The pool, for its queue depth and busy count. */
  get pool(): WorkerPool | undefined {
    return this.#pool;
  }

  async prepare(source: ChunkSource, start: number, length: number, opts: PrepareOptions): Promise<PreparedChunk> {
    const giveBack = opts.keep ? await this.budget.acquire(length, opts.signal) : () => {};
    const done = (md5: string, sha256: string, bytes: Uint8Array | undefined): PreparedChunk => ({
      md5,
      sha256,
      bytes,
      release: once((r?: { reuse?: boolean }) => {
        giveBack();
        if (r?.reuse && bytes) this.#recycle(bytes.buffer as ArrayBuffer);
        this.#armSpareTimer();
      }),
    });
    let spare: ArrayBuffer | undefined;
    try {
      const src = this.#pool ? source.workerRef?.() : undefined;
      // A Blob hands out a new ArrayBuffer whatever we give: only files are read into spares.
      spare = opts.keep && (!src || 'fd' in src) ? this.#takeSpare(length) : undefined;
      if (src && this.#pool) {
        try {
          const into = spare;
          spare = undefined; // transferred: ours again only in the reply
          const reply = await this.#pool.run(
            { op: 'chunk', src, start, length, keep: opts.keep, ...(into ? { into } : {}) },
            { signal: opts.signal },
          );
          if (!('md5' in reply) || reply.md5 === undefined) throw new Error('bad worker reply');
          const bytes = opts.keep ? new Uint8Array(reply.buffer ?? new ArrayBuffer(0), 0, length) : undefined;
          return done(reply.md5, reply.sha256, bytes);
        } catch (err) {
          if (!(err instanceof WorkerUnavailableError)) throw err;
          this.#fallBack();
        }
      }
      const md5 = await this.#hashes.create('md5');
      const sha = await this.#hashes.create('sha256');
      if (opts.keep) {
        // Read into a buffer of its own: it is sent after this returns, while other chunks are read.
        const into = spare ? new Uint8Array(spare, 0, length) : new Uint8Array(length);
        spare = undefined;
        const bytes = await source.read(start, length, into);
        opts.signal?.throwIfAborted();
        md5.update(bytes);
        sha.update(bytes);
        return done(toBase64(md5.digest()), toBase64(sha.digest()), bytes);
      }
      const buffer = new Uint8Array(Math.min(HASH_SLICE, Math.max(1, length)));
      for (let off = 0; off < length; ) {
        opts.signal?.throwIfAborted();
        const n = Math.min(HASH_SLICE, length - off);
        const bytes = await source.read(start + off, n, buffer);
        md5.update(bytes);
        sha.update(bytes);
        off += n;
      }
      return done(toBase64(md5.digest()), toBase64(sha.digest()), undefined);
    } catch (err) {
      if (spare) this.#recycle(spare);
      giveBack();
      throw err;
    }
  }

  #takeSpare(length: number): ArrayBuffer | undefined {
    let at = this.#spares.findIndex((b) => b.byteLength === length);
    if (at < 0) at = this.#spares.findIndex((b) => b.byteLength >= length && b.byteLength <= 2 * length);
    if (at < 0) return undefined;
    const [buf] = this.#spares.splice(at, 1);
    this.#spareBytes -= buf!.byteLength;
    return buf;
  }

  #recycle(buf: ArrayBuffer): void {
    if (buf.byteLength === 0 || this.budget.held + this.#spareBytes + buf.byteLength > this.budget.limit) return;
    this.#spares.push(buf);
    this.#spareBytes += buf.byteLength;
  }

  /** Spares are dropped once no chunk has been kept for a while (an upload ended). */
  #armSpareTimer(): void {
    clearTimeout(this.#spareTimer);
    if (this.#spares.length === 0) return;
    this.#spareTimer = setTimeout(() => {
      if (this.budget.held === 0) this.#dropSpares();
    }, SPARE_TTL_MS);
    (this.#spareTimer as { unref?: () => void }).unref?.();
  }

  #dropSpares(): void {
    this.#spares = [];
    this.#spareBytes = 0;
  }

  /** Base64 SHA-256 of the whole source, read in order (in one thread of the pool when there is one). */
  async wholeSha256(
    source: ChunkSource,
    opts: { signal?: AbortSignal | undefined; onProgress?: ((bytes: number) => void) | undefined } = {},
  ): Promise<string> {
    const src = this.#pool ? source.workerRef?.() : undefined;
    if (src && this.#pool) {
      let reported = 0;
      try {
        const reply = await this.#pool.run(
          { op: 'whole', src, size: source.size },
          {
            signal: opts.signal,
            onProgress: (n) => {
              reported += n;
              opts.onProgress?.(n);
            },
          },
        );
        if (!('sha256' in reply)) throw new Error('bad worker reply');
        return reply.sha256;
      } catch (err) {
        if (!(err instanceof WorkerUnavailableError)) throw err;
        this.#fallBack();
        // Progress restarts from zero for the second attempt.
        opts.onProgress?.(-reported);
      }
    }
    const whole = await this.#hashes.create('sha256');
    const buffer = new Uint8Array(Math.min(HASH_SLICE, Math.max(1, source.size)));
    for (let off = 0; off < source.size; ) {
      opts.signal?.throwIfAborted();
      const n = Math.min(HASH_SLICE, source.size - off);
      whole.update(await source.read(off, n, buffer));
      off += n;
      opts.onProgress?.(n);
    }
    return toBase64(whole.digest());
  }

  /** Ends the threads (new ones start if the hasher is used again) and frees the spare buffers. */
  close(): void {
    this.#pool?.close();
    clearTimeout(this.#spareTimer);
    this.#dropSpares();
  }

  #fallBack(): void {
    this.#pool?.close();
    this.#pool = undefined;
  }
}

/**
 * A byte budget with a FIFO of waiters. A request larger than the whole budget is let through
 * when nothing else is held, so one huge chunk cannot wait forever.
 */
export class InflightBytes {
  #held = 0;
  #peak = 0;
  readonly #waiters: Array<{ n: number; grant: () => void }> = [];

  constructor(readonly limit: number) {
    if (!(limit > 0)) throw new RangeError(`maxInflightBytes must be positive, got ${limit}`);
  }

  get held(): number {
    return this.#held;
  }
  /** The most ever held at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Waits for `n` bytes; resolves to the function that gives them back. */
  acquire(n: number, signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortError(signal.reason));
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        this.#take(n);
        resolve(once(() => this.#give(n)));
      };
      const waiter = { n, grant };
      const onAbort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(new AbortError(signal?.reason));
        this.#wake();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#wake();
    });
  }

  #fits(n: number): boolean {
    return this.#held + n <= this.limit || this.#held === 0;
  }
  #take(n: number): void {
    this.#held += n;
    this.#peak = Math.max(this.#peak, this.#held);
  }
  #give(n: number): void {
    this.#held -= n;
    this.#wake();
  }
  #wake(): void {
    while (this.#waiters.length > 0 && this.#fits(this.#waiters[0]!.n)) this.#waiters.shift()!.grant();
  }
}

function once<A extends unknown[]>(f: (...args: A) => void): (...args: A) => void {
  let done = false;
  return (...args) => {
    if (!done) {
      done = true;
      f(...args);
    }
  };
}
