import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Database, openDatabase, runMigrations } from '../../db/client.ts';
import { type App, createApp } from '../../server/app.ts';
import { type Config, loadConfig } from '../../server/config.ts';
import { freePort } from '../../server/embedded.ts';
import { type CoordinatorServer, createCoordinatorServer } from '../../server/http-server.ts';
import { createLogger } from '../../server/logger.ts';
import { createMetrics } from '../../server/metrics.ts';
import { createObjectStore } from '../../server/storage/create-store.ts';
import type { ObjectStore } from '../../server/storage/object-store.ts';

/**
 * The coordinator as `server/main.ts` assembles it (pool with its error handler, app, the real
 * HTTP server with its `clientError` answer), in this process, on a database the test chooses
 * (a dedicated PostgreSQL, or one behind a TCP fault proxy).
 */
export interface InProcessCoordinator {
  url: string;
  app: App;
  config: Config;
  store: ObjectStore;
  database: Database;
  server: CoordinatorServer;
  /** Errors the pool reported on idle connections (instead of crashing the process). */
  poolErrors: Error[];
  keys: { alice: string; bob: string };
  close(): Promise<void>;
}

export async function startInProcessCoordinator(opts: {
  databaseUrl: string;
  store: 's3' | 'disk';
  env?: Record<string, string>;
}): Promise<InProcessCoordinator> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-inproc-'));
  const port = await freePort();
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    PORT: String(port),
    DATABASE_URL: opts.databaseUrl,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...opts.env,
  };
  if (opts.store === 's3') {
    for (const name of ['S3_ENDPOINT', 'S3_REGION', 'S3_BUCKET', 'S3_FORCE_PATH_STYLE']) {
      const v = process.env[name];
      if (v && !opts.env?.[name]) env[name] = v;
    }
  }
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel);
  const poolErrors: Error[] = [];
  const database = openDatabase({
    url: config.databaseUrl!,
    poolSize: config.databasePoolSize,
    onPoolError: (err) => poolErrors.push(err),
  });
  await runMigrations(database.pool);
  const metrics = createMetrics();
  const store = await createObjectStore(config, metrics);
  const app = createApp({ config, logger, metrics, db: database.db, pool: database.pool, store });
  const keys = {
    alice: (await app.repos.apiKeys.create('alice')).key,
    bob: (await app.repos.apiKeys.create('bob')).key,
  };
  const server = createCoordinatorServer({
    handler: app.koa.callback(),
    hstsMaxAgeSeconds: 0,
    trustProxy: false,
    logger,
  });
  await server.listen(port, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    config,
    store,
    database,
    server,
    poolErrors,
    keys,
    close: async () => {
      await server.close(100);
      await app.close();
      await database.close().catch(() => {});
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
