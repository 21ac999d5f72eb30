import path from 'node:path';
import Router from '@koa/router';
import Koa from 'koa';
import type pg from 'pg';
import { ApiKeysRepository } from '../db/api-keys-repository.ts';
import { AuditRepository } from '../db/audit-repository.ts';
import type { Db } from '../db/client.ts';
import { IdempotencyRepository } from '../db/idempotency-repository.ts';
import { PrincipalsRepository } from '../db/principals-repository.ts';
import { UploadsRepository } from '../db/uploads-repository.ts';
import { AdminActions } from './audit/admin-actions.ts';
import { AuditLog } from './audit/audit-log.ts';
import type { Config } from './config.ts';
import { DownloadService } from './download/download-service.ts';
import { adminRouter } from './http/admin-routes.ts';
import { requireApiKey } from './http/auth.ts';
import { jsonBodyWithLimits } from './http/body-limits.ts';
import { diskStoreRouter } from './http/disk-store-routes.ts';
import { ApiError } from './http/errors.ts';
import { filesRouter } from './http/files-routes.ts';
import { errorMiddleware, type RequestState, requestContext } from './http/middleware.ts';
import { buildOpenApi } from './http/openapi.ts';
import { opsRouter } from './http/ops-routes.ts';
import { uploadsRouter } from './http/uploads-routes.ts';
import { webRouter } from './http/web-routes.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { ByteBudget } from './relay/chunk-body.ts';
import { RelayService } from './relay/relay-service.ts';
import { DiskObjectStore } from './storage/disk-object-store.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { Limits } from './uploads/limits.ts';
import { Quotas } from './uploads/quotas.ts';
import { Sweeper } from './uploads/sweeper.ts';
import { UploadService } from './uploads/upload-service.ts';
import { VERSION } from './version.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  pool: pg.Pool;
  store: ObjectStore;
}

export interface App {
  koa: Koa<RequestState>;
  repos: {
    uploads: UploadsRepository;
    apiKeys: ApiKeysRepository;
    idempotency: IdempotencyRepository;
    principals: PrincipalsRepository;
    audit: AuditRepository;
  };
  /** Key and quota changes with their audit rows (the admin endpoints and tests use it). */
  adminActions: AdminActions;
  service: UploadService;
  limits: Limits;
  /** Background housekeeping; `server/main.ts` starts it, tests call `runOnce()`. */
  sweeper: Sweeper;
  /** Marks the app as draining: `/readyz` answers 503 and new /v1 work is refused with 503. */
  beginShutdown(): void;
  /** Stops the sweeper and the limiters (timers, Redis). */
  close(): Promise<void>;
}

/** How often the sweeper looks for expired uploads and lapsed leases. */
const SWEEP_INTERVAL_MS = 30_000;

/** Builds the application. Never listens: `server/main.ts` does, tests use `koa.callback()`. */
export function createApp(deps: AppDeps): App {
  const koa = new Koa<RequestState>({ proxy: false });
  // Errors are logged by errorMiddleware with the request id; Koa's default stderr print would duplicate them.
  koa.silent = true;
  const repos = {
    uploads: new UploadsRepository(deps.db),
    apiKeys: new ApiKeysRepository(deps.db),
    idempotency: new IdempotencyRepository(deps.db),
    principals: new PrincipalsRepository(deps.db),
    audit: new AuditRepository(deps.db),
  };
  const audit = new AuditLog(repos.audit, deps.logger);
  const adminActions = new AdminActions(deps.db);
  let shuttingDown = false;
  const { config } = deps;
  const limits = new Limits({
    maxInflightPerUpload: config.maxInflightPerUpload,
    maxInflightPerPrincipal: config.maxInflightPerPrincipal,
    maxInflightGlobal: config.maxInflightGlobal,
    taskQueueSize: config.taskQueueSize,
    minWorkers: config.minWorkers,
    maxWorkers: config.maxWorkers,
    presignTtlSeconds: config.presignTtlSeconds,
    ratePerSecond: config.rateLimitPerSecond,
    burst: config.rateLimitBurst,
    keyPrefix: config.redisKeyPrefix,
    ...(config.redisUrl ? { redisUrl: config.redisUrl } : {}),
    metrics: deps.metrics,
    onError: (err) => deps.logger.warn({ err }, 'limits datastore error'),
  });
  const service = new UploadService({
    repo: repos.uploads,
    store: deps.store,
    limits,
    metrics: deps.metrics,
    log: deps.logger,
    defaultChunkSize: config.defaultChunkSize,
    maxFileSize: config.maxFileSize,
    presignTtlSeconds: config.presignTtlSeconds,
    uploadTtlHours: config.uploadTtlHours,
    maxInflightPerUpload: config.maxInflightPerUpload,
    wholeFileVerify: config.wholeFileVerify,
    quotas: new Quotas({
      principals: repos.principals,
      metrics: deps.metrics,
      defaults: {
        maxConcurrentUploads: config.quotaMaxConcurrentUploads,
        maxBytesInFlight: config.quotaMaxBytesInFlight,
        maxTotalBytes: config.quotaMaxTotalBytes,
      },
    }),
    ...(config.sseDefault === 'SSE-S3' ? { defaultEncryption: { mode: 'SSE-S3' as const } } : {}),
    ...(config.sseDefault === 'SSE-KMS'
      ? {
          defaultEncryption: {
            mode: 'SSE-KMS' as const,
            ...(config.sseKmsKeyId ? { kmsKeyId: config.sseKmsKeyId } : {}),
            ...(config.sseBucketKey ? { bucketKey: true } : {}),
          },
        }
      : {}),
  });
  const sweeper = new Sweeper({
    pool: deps.pool,
    uploads: repos.uploads,
    idempotency: repos.idempotency,
    service,
    metrics: deps.metrics,
    log: deps.logger.child({ component: 'sweeper' }),
    intervalMs: SWEEP_INTERVAL_MS,
  });
  const relay = new RelayService({
    uploads: service,
    store: deps.store,
    limits,
    metrics: deps.metrics,
    log: deps.logger.child({ component: 'relay' }),
    maxRetries: config.maxRetries,
    budget: new ByteBudget(config.relayMemoryBudget),
    spoolDir: path.join(config.dataDir, 'spool'),
    hashThreads: config.relayHashThreads,
  });
  const downloads = new DownloadService({
    repo: repos.uploads,
    store: deps.store,
    metrics: deps.metrics,
    presignTtlSeconds: config.presignTtlSeconds,
    prefetchWindow: config.downloadPrefetchWindow,
    segmentSize: config.downloadSegmentSize,
  });
  const openapi = buildOpenApi(VERSION);

  koa.use(requestContext(deps.logger, deps.metrics));
  koa.use(errorMiddleware());

  const ops = opsRouter({ db: deps.db, store: deps.store, metrics: deps.metrics, isShuttingDown: () => shuttingDown });
  koa.use(ops.routes());

  if (deps.store instanceof DiskObjectStore) {
    koa.use(diskStoreRouter(deps.store).routes());
  }

  koa.use(
    new Router()
      .get('/v1/openapi.json', (ctx) => {
        ctx.body = openapi;
      })
      .routes(),
  );

  koa.use(webRouter({ log: deps.logger }).routes());

  const v1 = new Router<RequestState>();
  v1.use(async (_ctx, next) => {
    if (shuttingDown) throw new ApiError('shutting_down', undefined, {}, { 'Retry-After': '1', Connection: 'close' });
    await next();
  });
  v1.use(requireApiKey(repos.apiKeys));
  // The per-principal request-rate bucket: every authenticated /v1 request takes a token.
  v1.use(async (ctx, next) => {
    await limits.takeRequest(ctx.state.principal!);
    await next();
  });
  v1.use(requireJsonBody());
  // Per-endpoint JSON limits (server/http/body-limits.ts): too large → 413 payload_too_large.
  v1.use(jsonBodyWithLimits());
  v1.use(uploadsRouter({ uploads: repos.uploads, idempotency: repos.idempotency, service, relay, audit }).routes());
  v1.use(filesRouter(downloads, audit).routes());
  v1.use(adminRouter({ audit: repos.audit, apiKeys: repos.apiKeys, actions: adminActions, service }).routes());
  koa.use(v1.routes());
  koa.use(
    v1.allowedMethods({
      throw: true,
      methodNotAllowed: () => new ApiError('method_not_allowed'),
      notImplemented: () => new ApiError('method_not_allowed'),
    }),
  );

  return {
    koa,
    repos,
    adminActions,
    service,
    limits,
    sweeper,
    beginShutdown: () => {
      shuttingDown = true;
    },
    close: async () => {
      await sweeper.stop();
      await limits.close();
      await relay.close();
    },
  };
}

/** POST and PATCH bodies on the API are JSON: anything else is `415` before it is read. */
function requireJsonBody() {
  return async (ctx: Koa.Context, next: Koa.Next) => {
    const hasBody = Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
    if ((ctx.method === 'POST' || ctx.method === 'PATCH') && hasBody && !ctx.is('application/json')) {
      throw new ApiError('unsupported_media_type', 'Send the body as application/json.');
    }
    await next();
  };
}
