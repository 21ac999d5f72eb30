import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  type AcquireResult,
  INFLIGHT_LEVELS,
  type InflightCounter,
  type InflightCounts,
  type InflightLimits,
} from './limits-inflight.ts';

/**
 * Inflight slots shared by every coordinator replica through Redis.
 *
 * Layout: one sorted set per level, `{prefix}:inflight:u:<uploadId>`, `…:p:<principal>` and
 * `…:g`. A slot is a member (a random token) whose score is the time its lease ends; the three
 * sets hold the same tokens. The `{prefix}` hash tag puts all keys in one Redis Cluster slot,
 * which multi-key scripts require.
 *
 * Leases: the caller frees each slot exactly once (the chunk is reported, or its PostgreSQL
 * sweep finds the lease expired). Redis-side expiry is only the safety net for a release that
 * never comes, e.g. a replica that died between its PostgreSQL update and its Redis call: every
 * script first drops members whose lease has ended (ZREMRANGEBYSCORE -inf now), and every key
 * carries a PEXPIRE at its latest lease, so an idle upload's set disappears by itself. That is
 * why the Redis lease (`expiresAt`) is set a grace period after the URL's own expiry: the
 * caller's sweep should release first. A release names only the upload and a count, so it
 * removes that upload's earliest-ending slots: the slots left then end no sooner than the real
 * ones (the error is on the safe side). A release that comes after the Redis lease already
 * ended frees one of the upload's other slots early; the grace period keeps that rare.
 *
 * Time is the caller's clock (`now`, ms), as Bottleneck's scripts do too: replicas' clocks
 * differ by milliseconds and leases last minutes.
 */
const ACQUIRE = `
local now = tonumber(ARGV[1])
local expiresAt = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local counts = {}
for i = 1, 3 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  counts[i] = redis.call('ZCARD', KEYS[i])
end
for i = 1, 3 do
  if counts[i] + n > tonumber(ARGV[3 + i]) then
    return {i, counts[1], counts[2], counts[3]}
  end
end
for i = 1, 3 do
  local batch = {}
  for j = 1, n do
    batch[#batch + 1] = expiresAt
    batch[#batch + 1] = ARGV[7] .. ':' .. j
    if #batch >= 1000 or j == n then
      redis.call('ZADD', KEYS[i], unpack(batch))
      batch = {}
    end
  end
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil(tonumber(last[2]) - now)))
end
return {0, counts[1] + n, counts[2] + n, counts[3] + n}
`;

const RELEASE = `
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, 3 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
end
local victims = {}
if n >= 1 then
  victims = redis.call('ZRANGE', KEYS[1], 0, n - 1)
end
for j = 1, #victims, 1000 do
  local batch = {}
  for k = j, math.min(j + 999, #victims) do
    batch[#batch + 1] = victims[k]
  end
  for i = 1, 3 do
    redis.call('ZREM', KEYS[i], unpack(batch))
  end
end
return {#victims, redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[3])}
`;

const COUNTS = `
local now = tonumber(ARGV[1])
local out = {}
for i = 1, 3 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  out[i] = redis.call('ZCARD', KEYS[i])
end
return out
`;

type Script = (...args: Array<string | number>) => Promise<number[]>;

export class RedisInflight implements InflightCounter {
  readonly #acquire: Script;
  readonly #release: Script;
  readonly #counts: Script;

  /** `redis` is shared with the caller, who closes it. */
  constructor(
    redis: Redis,
    readonly limits: InflightLimits,
    private readonly prefix: string,
    private readonly now: () => number,
  ) {
    redis.defineCommand('conveyorInflightAcquire', { numberOfKeys: 3, lua: ACQUIRE });
    redis.defineCommand('conveyorInflightRelease', { numberOfKeys: 3, lua: RELEASE });
    redis.defineCommand('conveyorInflightCounts', { numberOfKeys: 3, lua: COUNTS });
    const commands = redis as unknown as Record<string, Script>;
    this.#acquire = commands.conveyorInflightAcquire!.bind(redis);
    this.#release = commands.conveyorInflightRelease!.bind(redis);
    this.#counts = commands.conveyorInflightCounts!.bind(redis);
  }

  /** The three keys a reservation touches, in check order. */
  keys(principal: string, uploadId: string): [string, string, string] {
    const base = `{${this.prefix}}:inflight`;
    return [`${base}:u:${uploadId}`, `${base}:p:${principal}`, `${base}:g`];
  }

  async acquire(principal: string, uploadId: string, n: number, expiresAt: number): Promise<AcquireResult> {
    const { perUpload, perPrincipal, global } = this.limits;
    const [level = 0, ...rest] = await this.#acquire(
      ...this.keys(principal, uploadId),
      this.now(),
      Math.ceil(expiresAt),
      n,
      perUpload,
      perPrincipal,
      global,
      randomUUID(),
    );
    const counts = toCounts(rest);
    if (level === 0) return { ok: true, counts };
    return { ok: false, level: INFLIGHT_LEVELS[level - 1]!, counts };
  }

  async release(principal: string, uploadId: string, n: number): Promise<InflightCounts> {
    const [, ...rest] = await this.#release(...this.keys(principal, uploadId), this.now(), n);
    return toCounts(rest);
  }

  async counts(principal: string, uploadId: string): Promise<InflightCounts> {
    return toCounts(await this.#counts(...this.keys(principal, uploadId), this.now()));
  }

  async close(): Promise<void> {}
}

function toCounts([upload = 0, principal = 0, global = 0]: number[]): InflightCounts {
  return { upload, principal, global };
}
