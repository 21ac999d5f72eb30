import { eq, sql } from 'drizzle-orm';
import type { Db, Tx } from './client.ts';
import { type PrincipalRow, principals, uploads } from './schema.ts';

/** A principal's quota: `null` means unlimited. */
export interface Quota {
  maxConcurrentUploads: number | null;
  maxBytesInFlight: number | null;
  maxTotalBytes: number | null;
}

/** What a principal uses now, in the units of `Quota`. */
export interface QuotaUsage {
  concurrentUploads: number;
  bytesInFlight: number;
  totalBytes: number;
}

export type QuotaOverrides = Partial<Record<keyof Quota, number | null>>;

/** Per-principal settings (quota overrides) and usage. */
export class PrincipalsRepository {
  constructor(private readonly db: Db | Tx) {}

  async get(name: string): Promise<PrincipalRow | null> {
    const [row] = await this.db.select().from(principals).where(eq(principals.name, name));
    return row ?? null;
  }

  async list(): Promise<PrincipalRow[]> {
    return this.db.select().from(principals).orderBy(principals.name);
  }

  /** Sets overrides (a number; 0 = unlimited) or clears them (`null` = back to the default). */
  async setQuota(name: string, overrides: QuotaOverrides): Promise<PrincipalRow> {
    const [row] = await this.db
      .insert(principals)
      .values({ name, ...overrides })
      .onConflictDoUpdate({ target: principals.name, set: { ...overrides, updatedAt: sql`now()` } })
      .returning();
    return row!;
  }

  /**
   * Usage counted from the uploads table: uploads not yet terminal are "in flight" (their
   * declared size), completed ones count toward the total with them.
   */
  async usage(name: string): Promise<QuotaUsage> {
    const [row] = await this.db
      .select({
        concurrentUploads: sql<number>`count(*) FILTER (WHERE ${uploads.status} IN ('INITIATED', 'IN_PROGRESS', 'COMPLETING'))::int`,
        bytesInFlight: sql<number>`coalesce(sum(${uploads.fileSize}) FILTER (WHERE ${uploads.status} IN ('INITIATED', 'IN_PROGRESS', 'COMPLETING')), 0)::float8`,
        totalBytes: sql<number>`coalesce(sum(${uploads.fileSize}) FILTER (WHERE ${uploads.status} IN ('INITIATED', 'IN_PROGRESS', 'COMPLETING', 'COMPLETED')), 0)::float8`,
      })
      .from(uploads)
      .where(eq(uploads.principal, name));
    return row ?? { concurrentUploads: 0, bytesInFlight: 0, totalBytes: 0 };
  }
}

/** The effective quota: a principal's override where set, the default otherwise; 0 means unlimited. */
export function effectiveQuota(defaults: Quota, row: PrincipalRow | null): Quota {
  const pick = (override: number | null | undefined, fallback: number | null) => {
    const v = override ?? fallback;
    return v === null || v === 0 ? null : v;
  };
  return {
    maxConcurrentUploads: pick(row?.maxConcurrentUploads, defaults.maxConcurrentUploads),
    maxBytesInFlight: pick(row?.maxBytesInFlight, defaults.maxBytesInFlight),
    maxTotalBytes: pick(row?.maxTotalBytes, defaults.maxTotalBytes),
  };
}
