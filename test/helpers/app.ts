import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type App, createApp } from '../../server/app.ts';
import { type Config, loadConfig } from '../../server/config.ts';
import { createLogger } from '../../server/logger.ts';
import { createMetrics, type Metrics } from '../../server/metrics.ts';
import { createObjectStore } from '../../server/storage/create-store.ts';
import type { ObjectStore } from '../../server/storage/object-store.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface TestServer {
  url: string;
  app: App;
  config: Config;
  store: ObjectStore;
  metrics: Metrics;
  tdb: TestDatabase;
  /** An API key of principal `alice`, and one of `bob`. */
  keys: { alice: string; bob: string };
  close(): Promise<void>;
}

/**
 * The whole coordinator on a loopback port, with its own database on the real PostgreSQL
 * and the object store `npm test` selected (`store: 's3'` needs S3_BUCKET; default: disk).
 */
export async function startTestServer(
  opts: {
    store?: 'disk' | 's3';
    env?: Record<string, string>;
    /** Where the coordinator's pino logs go (tests that read them); default stdout at LOG_LEVEL. */
    logDestination?: { write(line: string): void };
  } = {},
): Promise<TestServer> {
  const tdb = await createTestDatabase();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-app-'));
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;

  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    PORT: String(port),
    DATABASE_URL: tdb.url,
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
  const metrics = createMetrics();
  const store = await createObjectStore(config, metrics);
  const logger = createLogger(config.logLevel, opts.logDestination);
  const app = createApp({ config, logger, metrics, db: tdb.db, pool: tdb.pool, store });
  server.on('request', app.koa.callback());
  const keys = {
    alice: (await app.repos.apiKeys.create('alice')).key,
    bob: (await app.repos.apiKeys.create('bob')).key,
  };

  return {
    url: `http://127.0.0.1:${port}`,
    app,
    config,
    store,
    metrics,
    tdb,
    keys,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await app.close();
      await tdb.drop();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** True when `npm test` was given an S3 gateway to test against. */
export const s3Configured = () => Boolean(process.env.S3_BUCKET);
