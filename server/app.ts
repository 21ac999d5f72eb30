import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import Koa from 'koa';
import { ApiKeysRepository } from '../db/api-keys-repository.ts';
import type { Db } from '../db/client.ts';
import { IdempotencyRepository } from '../db/idempotency-repository.ts';
import { UploadsRepository } from '../db/uploads-repository.ts';
import type { Config } from './config.ts';
import { requireApiKey } from './http/auth.ts';
import { diskStoreRouter } from './http/disk-store-routes.ts';
import { ApiError } from './http/errors.ts';
import { errorMiddleware, type RequestState, requestContext } from './http/middleware.ts';
import { opsRouter } from './http/ops-routes.ts';
import { uploadsRouter } from './http/uploads-routes.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { DiskObjectStore } from './storage/disk-object-store.ts';
import type { ObjectStore } from './storage/object-store.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  db: Db;
  store: ObjectStore;
}

export interface App {
  koa: Koa<RequestState>;
  repos: { uploads: UploadsRepository; apiKeys: ApiKeysRepository; idempotency: IdempotencyRepository };
  /** Marks the app as draining: `/readyz` answers 503 and new /v1 work is refused with 503. */
  beginShutdown(): void;
}

/** JSON bodies on the API are small: chunk bytes never travel as JSON. */
const JSON_LIMIT = '1mb';

/** Builds the application. Never listens: `server/main.ts` does, tests use `koa.callback()`. */
export function createApp(deps: AppDeps): App {
  const koa = new Koa<RequestState>({ proxy: false });
  // Errors are logged by errorMiddleware with the request id; Koa's default stderr print would duplicate them.
  koa.silent = true;
  const repos = {
    uploads: new UploadsRepository(deps.db),
    apiKeys: new ApiKeysRepository(deps.db),
    idempotency: new IdempotencyRepository(deps.db),
  };
  let shuttingDown = false;

  koa.use(requestContext(deps.logger, deps.metrics));
  koa.use(errorMiddleware());

  const ops = opsRouter({ db: deps.db, store: deps.store, metrics: deps.metrics, isShuttingDown: () => shuttingDown });
  koa.use(ops.routes());

  if (deps.store instanceof DiskObjectStore) {
    koa.use(diskStoreRouter(deps.store).routes());
  }

  const v1 = new Router<RequestState>();
  v1.use(async (_ctx, next) => {
    if (shuttingDown) throw new ApiError('shutting_down', undefined, {}, { 'Retry-After': '1', Connection: 'close' });
    await next();
  });
  v1.use(requireApiKey(repos.apiKeys));
  v1.use(bodyParser({ enableTypes: ['json'], jsonLimit: JSON_LIMIT, encoding: 'utf-8' }));
  v1.use(uploadsRouter({ uploads: repos.uploads }).routes());
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
    beginShutdown: () => {
      shuttingDown = true;
    },
  };
}
