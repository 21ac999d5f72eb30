/**
 * Inflight-slot counters: the per-upload, per-principal and global limits on chunks that are
 * presigned (or being relayed) and not yet reported. Two implementations sit behind one small
 * interface: `MemoryInflight` (one process) and `RedisInflight` (shared by replicas,
 * `limits-redis.ts`).
 *
 * Why not Bottleneck reservoirs: a reservation must take n slots at three levels all-or-nothing
 * and never wait. Bottleneck's reservoirs are one counter per limiter; `incrementReservoir` is
 * atomic per limiter, so three levels need three round trips with a rollback, and a concurrent
 * acquirer on another replica can be refused by a reservation that is about to be rolled back.
 * Bottleneck also has no notion of a slot that expires on its own, which Redis mode needs (a
 * replica that dies holding slots must not leak them). One Lua script over three sorted sets
 * does both in one atomic step; the in-memory version is three maps.
 */

/** The inflight limit names, in the order they are checked; they appear in 429 bodies and metrics. */
export const INFLIGHT_LEVELS = ['upload_inflight', 'principal_inflight', 'global_inflight'] as const;
export type InflightLevel = (typeof INFLIGHT_LEVELS)[number];

export interface InflightLimits {
  perUpload: number;
  perPrincipal: number;
  global: number;
}

/** Counts after an operation; `upload` and `principal` are those of the keys it touched. */
export interface InflightCounts {
  upload: number;
  principal: number;
  global: number;
}

export type AcquireResult =
  | { ok: true; counts: InflightCounts }
  | { ok: false; level: InflightLevel; counts: InflightCounts };

export interface InflightCounter {
  /**
   * Takes n slots at every level, or none: the first level that would go over its limit is
   * returned and nothing changes. `expiresAt` (ms since the epoch) is when the slots free
   * themselves if never released; only the Redis implementation honours it (see limits-redis.ts).
   */
  acquire(principal: string, uploadId: string, n: number, expiresAt: number): Promise<AcquireResult>;
  /** Frees up to n slots of this upload at every level; never goes below zero. */
  release(principal: string, uploadId: string, n: number): Promise<InflightCounts>;
  counts(principal: string, uploadId: string): Promise<InflightCounts>;
  close(): Promise<void>;
}

/**
 * Per-process counters. Slots do not expire here: the caller frees each one exactly once
 * (reported, or found expired by its sweep in PostgreSQL), and a restart starts from zero,
 * which is right because the process that counted them is gone with its counts.
 */
export class MemoryInflight implements InflightCounter {
  readonly #byUpload = new Map<string, number>();
  readonly #byPrincipal = new Map<string, number>();
  #global = 0;

  constructor(readonly limits: InflightLimits) {}

  // Check and update with no `await` in between: two acquires must not both see the old counts.
  async acquire(principal: string, uploadId: string, n: number): Promise<AcquireResult> {
    const before = this.#counts(principal, uploadId);
    const room: Array<[InflightLevel, number, number]> = [
      ['upload_inflight', before.upload, this.limits.perUpload],
      ['principal_inflight', before.principal, this.limits.perPrincipal],
      ['global_inflight', before.global, this.limits.global],
    ];
    for (const [level, count, limit] of room) {
      if (count + n > limit) return { ok: false, level, counts: before };
    }
    bump(this.#byUpload, uploadId, n);
    bump(this.#byPrincipal, principal, n);
    this.#global += n;
    return { ok: true, counts: this.#counts(principal, uploadId) };
  }

  async release(principal: string, uploadId: string, n: number): Promise<InflightCounts> {
    // Free what this upload holds, at most n, and the same number at the other levels, so the
    // three stay consistent even if a caller releases more than it took.
    const freed = Math.min(n, this.#byUpload.get(uploadId) ?? 0);
    bump(this.#byUpload, uploadId, -freed);
    bump(this.#byPrincipal, principal, -Math.min(freed, this.#byPrincipal.get(principal) ?? 0));
    this.#global = Math.max(0, this.#global - freed);
    return this.#counts(principal, uploadId);
  }

  async counts(principal: string, uploadId: string): Promise<InflightCounts> {
    return this.#counts(principal, uploadId);
  }

  #counts(principal: string, uploadId: string): InflightCounts {
    return {
      upload: this.#byUpload.get(uploadId) ?? 0,
      principal: this.#byPrincipal.get(principal) ?? 0,
      global: this.#global,
    };
  }

  async close(): Promise<void> {}
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const next = (map.get(key) ?? 0) + by;
  if (next > 0) map.set(key, next);
  else map.delete(key);
}
