import type pg from 'pg';
import type { IdempotencyRepository } from '../../db/idempotency-repository.ts';
import type { UploadsRepository } from '../../db/uploads-repository.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { UploadService } from './upload-service.ts';

/** Advisory-lock key: one coordinator sweeps at a time, whatever the number of replicas. */
const SWEEP_LOCK_KEY = 7_263_310_002;
const BATCH = 100;

export interface SweeperOptions {
  pool: pg.Pool;
  uploads: UploadsRepository;
  idempotency: IdempotencyRepository;
  service: UploadService;
  metrics: Metrics;
  log: Logger;
  intervalMs: number;
}

/**
 * Background housekeeping, so that nothing abandoned keeps costing storage or slots:
 * uploads past `expiresAt` are marked ABORTED and their multipart uploads aborted in the store;
 * aborts whose store call failed are retried; lapsed chunk leases return to PENDING; expired
 * idempotency keys are deleted; the incomplete-uploads gauges are refreshed.
 */
export class Sweeper {
  readonly #o: SweeperOptions;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(options: SweeperOptions) {
    this.#o = options;
  }

  start(): void {
    this.#timer = setInterval(() => void this.runOnce(), this.#o.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  /** One sweep; returns false when another coordinator holds the sweep lock. */
  async runOnce(): Promise<boolean> {
    if (this.#running) {
      await this.#running;
      return true;
    }
    let locked = false;
    const run = (async () => {
      const client = await this.#o.pool.connect();
      try {
        locked = (await client.query('SELECT pg_try_advisory_lock($1) AS ok', [SWEEP_LOCK_KEY])).rows[0].ok;
        if (!locked) return;
        try {
          await this.#sweep();
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [SWEEP_LOCK_KEY]);
        }
      } catch (err) {
        this.#o.log.warn({ err }, 'sweep failed');
      } finally {
        client.release();
      }
    })();
    this.#running = run;
    try {
      await run;
    } finally {
      this.#running = null;
    }
    return locked;
  }

  async #sweep(): Promise<void> {
    const { uploads, log } = this.#o;
    const now = new Date();
    for (const u of await uploads.findExpired(now, BATCH)) {
      const aborted = await uploads.transition(u.id, ['INITIATED', 'IN_PROGRESS'], 'ABORTED', {
        failureReason: 'expired (UPLOAD_TTL_HOURS)',
      });
      if (aborted) {
        await this.#o.service.endLeases(aborted.principal, aborted.id);
        await this.#discard(aborted);
      }
    }
    for (const u of await uploads.findUndiscarded(BATCH)) await this.#discard(u);
    let freed = 0;
    for (const { uploadId, principal } of await uploads.findLapsedLeases(now, BATCH)) {
      freed += await this.#o.service.endLeases(principal, uploadId, now);
    }
    const purged = await this.#o.idempotency.purgeExpired();
    const totals = await uploads.incompleteTotals();
    this.#o.metrics.incompleteUploads.set(totals.uploads);
    this.#o.metrics.incompleteUploadBytes.set(totals.bytes);
    if (freed || purged) log.debug({ freedLeases: freed, purgedIdempotencyKeys: purged }, 'sweep');
  }

  async #discard(u: Parameters<UploadService['discardStoreUpload']>[0]): Promise<void> {
    try {
      await this.#o.service.discardStoreUpload(u);
      this.#o.log.info({ uploadId: u.id, reason: u.failureReason }, 'aborted upload discarded from the store');
    } catch (err) {
      this.#o.log.warn({ err, uploadId: u.id }, 'could not abort the store upload; will retry');
    }
  }
}
