import type { ApiClient, PresignedChunk } from './api.ts';
import { HTTPError } from './errors.ts';
import type { ChunkDigest } from './hashing.ts';

export interface PresignerOptions {
  api: ApiClient;
  uploadId: string;
  /** A chunk's digests, once it has been read and hashed (only such chunks are presigned: the URL signs its Content-MD5). */
  digest: (chunkIndex: number) => ChunkDigest | undefined;
  /** How many chunks one presign call covers now (the pool's level, capped by the option). */
  batchSize: () => number;
  /** Chunks still to send, in the order they will be sent: the batch is filled from these. */
  upcoming: () => Iterable<number>;
  /** A URL closer than this to its expiry is presigned again before use. */
  refreshMarginMs: number;
  signal: AbortSignal;
  now?: () => number;
}

/**
 * Presigns chunk URLs in batches ahead of the workers: a worker asking for chunk i gets a URL
 * presigned together with the next chunks in line that are already hashed, so workers often find
 * theirs cached.
 * Each presigned chunk holds one of the server's inflight slots until it is reported, which is
 * why a batch is no larger than the pool's current level.
 */
export class Presigner {
  readonly #o: PresignerOptions;
  readonly #cache = new Map<number, { chunk: PresignedChunk; expiresAt: number }>();
  readonly #pending = new Map<number, Promise<void>>();
  /** Learned from the server when it refuses a batch as too large (MAX_INFLIGHT_PER_UPLOAD). */
  #serverMax = Number.POSITIVE_INFINITY;
  readonly #now: () => number;
  calls = 0;

  constructor(options: PresignerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  #fresh(i: number): boolean {
    const c = this.#cache.get(i);
    return c !== undefined && c.expiresAt - this.#now() > this.#o.refreshMarginMs;
  }

  async get(i: number): Promise<PresignedChunk> {
    for (let round = 0; ; round++) {
      if (this.#fresh(i)) return this.#cache.get(i)!.chunk;
      const pending = this.#pending.get(i);
      if (pending) await pending;
      else await this.#batch(i);
      if (this.#fresh(i)) return this.#cache.get(i)!.chunk;
      // A URL that expires within the margin right after presigning: the margin is longer than the TTL.
      if (round > 1 && this.#cache.has(i)) return this.#cache.get(i)!.chunk;
    }
  }

  /** Forgets a chunk's URL: it was used, or it expired (403), and must be presigned again. */
  forget(i: number): void {
    this.#cache.delete(i);
  }

  async #batch(i: number): Promise<void> {
    const size = Math.max(1, Math.min(this.#o.batchSize(), this.#serverMax, 100));
    const batch = [i];
    for (const j of this.#o.upcoming()) {
      if (batch.length >= size) break;
      if (j !== i && this.#o.digest(j) && !this.#pending.has(j) && !this.#fresh(j)) batch.push(j);
    }
    const p = this.#send(batch);
    for (const j of batch) this.#pending.set(j, p);
    try {
      await p;
    } finally {
      for (const j of batch) if (this.#pending.get(j) === p) this.#pending.delete(j);
    }
  }

  async #send(batch: number[]): Promise<void> {
    this.calls++;
    const chunks = batch.map((j) => ({ chunkIndex: j, ...this.#o.digest(j) }));
    try {
      const res = await this.#o.api.presign(this.#o.uploadId, chunks, this.#o.signal);
      for (const c of res.chunks) this.#cache.set(c.chunkIndex, { chunk: c, expiresAt: Date.parse(c.expiresAt) });
    } catch (err) {
      // The server refuses a batch with more new chunks than MAX_INFLIGHT_PER_UPLOAD and says how
      // many it takes (`maxNewChunks`): learn it and go again smaller.
      const max = err instanceof HTTPError ? Number(err.details.extra?.maxNewChunks) : Number.NaN;
      if (Number.isInteger(max) && max >= 1 && batch.length > 1) {
        this.#serverMax = max;
        return this.#send(batch.slice(0, this.#serverMax));
      }
      throw err;
    }
  }
}
