import {
  effectiveQuota,
  type PrincipalsRepository,
  type Quota,
  type QuotaUsage,
} from '../../db/principals-repository.ts';
import { ApiError } from '../http/errors.ts';
import type { Metrics } from '../metrics.ts';

/** No limit at all (no quota configured). */
export const UNLIMITED: Quota = { maxConcurrentUploads: null, maxBytesInFlight: null, maxTotalBytes: null };

/** True when at least one limit applies, i.e. creating an upload must count usage first. */
export const isLimited = (q: Quota) => Object.values(q).some((v) => v !== null);

/**
 * Per-principal quotas (README "Tenants"): the configured defaults (QUOTA_MAX_*), overridden per
 * principal in the `principals` table. The race-free part — counting and inserting under one
 * lock — is `UploadsRepository.createWithinQuota`; this decides what the limits are.
 */
export class Quotas {
  constructor(private readonly o: { defaults: Quota; principals: PrincipalsRepository; metrics?: Metrics }) {}

  /** The principal's effective quota (`null` = unlimited). */
  async of(principal: string): Promise<Quota> {
    return effectiveQuota(this.o.defaults, await this.o.principals.get(principal));
  }

  async usage(principal: string): Promise<QuotaUsage> {
    return this.o.principals.usage(principal);
  }

  /** `assertWithinQuota`, counted in `quota_refusals_total{quota}` when it refuses. */
  check(quota: Quota, usage: QuotaUsage, fileSize: number): void {
    try {
      assertWithinQuota(quota, usage, fileSize);
    } catch (err) {
      if (err instanceof ApiError) this.o.metrics?.quotaRefusals.inc({ quota: String(err.details.quota) });
      throw err;
    }
  }
}

/**
 * `403 quota_exceeded` when one more upload of `fileSize` bytes would pass a limit; the details
 * say which quota, its limit and the current usage. Pure.
 */
export function assertWithinQuota(quota: Quota, usage: QuotaUsage, fileSize: number): void {
  const checks = [
    ['concurrent_uploads', quota.maxConcurrentUploads, usage.concurrentUploads, 1],
    ['bytes_in_flight', quota.maxBytesInFlight, usage.bytesInFlight, fileSize],
    ['total_bytes', quota.maxTotalBytes, usage.totalBytes, fileSize],
  ] as const;
  for (const [name, limit, current, adding] of checks) {
    if (limit !== null && current + adding > limit) {
      throw new ApiError('quota_exceeded', `Quota ${name} exceeded: ${current} + ${adding} > ${limit}.`, {
        quota: name,
        limit,
        current,
        requested: adding,
      });
    }
  }
}
