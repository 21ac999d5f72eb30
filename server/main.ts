import http from 'node:http';
import path from 'node:path';
import { openDatabase, runMigrations } from '../db/client.ts';
import { createApp } from './app.ts';
import { seedApiKeys } from './bootstrap.ts';
import { ConfigError, loadConfig } from './config.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { createObjectStore } from './storage/create-store.ts';

/**
 * Entry point: configuration → embedded services when none are configured → app → listen.
 * SIGTERM/SIGINT drain: stop accepting, let in-flight requests finish (bounded), close the
 * pool, stop the embedded database.
 */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const cleanups: Array<() => Promise<void>> = [];
  const runCleanups = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err) => logger.error({ err }, 'cleanup failed'));
  };

  try {
    let databaseUrl = config.databaseUrl;
    let embedded: EmbeddedDatabase | null = null;
    if (!databaseUrl) {
      const pgLog = logger.child({ component: 'embedded-postgres' });
      embedded = await startEmbeddedPostgres({
        dir: path.join(config.dataDir, 'postgres'),
        log: (m) => pgLog.debug(m),
      });
      cleanups.push(() => embedded!.stop());
      databaseUrl = embedded.url;
      logger.info({ dataDir: embedded.dataDir }, 'embedded PostgreSQL started');
    }

    const database = openDatabase({
      url: databaseUrl,
      poolSize: config.databasePoolSize,
      onPoolError: (err) => logger.warn({ err }, 'idle database connection lost'),
    });
    cleanups.push(() => database.close());
    await runMigrations(database.pool);

    const metrics = createMetrics();
    const store = await createObjectStore(config, metrics);
    const app = createApp({ config, logger, metrics, db: database.db, pool: database.pool, store });
    cleanups.push(() => app.close());
    const { devKey } = await seedApiKeys(config, app.repos.apiKeys, logger);
    app.sweeper.start();

    const server = http.createServer(app.koa.callback());
    // Chunk bodies are large and clients may be slow: don't cut a healthy upload short.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, resolve);
    });

    const { port } = server.address() as import('node:net').AddressInfo;
    const url = config.publicUrl.replace(/:\d+$/, `:${port}`);
    logger.info(
      { url, store: store.kind, database: embedded ? 'embedded' : 'external', dataDir: config.dataDir },
      'conveyor listening',
    );
    if (devKey) {
      // Printed for the developer at the terminal, deliberately outside the structured log.
      process.stdout.write(`\n  Conveyor is running at ${url}\n  Development API key: ${devKey}\n\n`);
    }

    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down: draining in-flight requests');
      app.beginShutdown();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timeout = new Promise<'timeout'>((r) =>
        setTimeout(r, config.shutdownTimeoutSeconds * 1000, 'timeout').unref(),
      );
      if ((await Promise.race([closed, timeout])) === 'timeout') {
        logger.warn('shutdown timeout reached: closing remaining connections');
        server.closeAllConnections();
      }
      await runCleanups();
      logger.info('stopped');
      process.exit(0);
    };
    // embedded-postgres (through async-exit-hook) installs its own SIGTERM/SIGINT handlers that
    // stop the database and exit(143) at once, cutting the drain short. This shutdown stops the
    // embedded database itself, last, so it replaces them.
    process.removeAllListeners('SIGTERM');
    process.removeAllListeners('SIGINT');
    process.on('SIGTERM', () => void shutdown('SIGTERM'));
    process.on('SIGINT', () => void shutdown('SIGINT'));
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    await runCleanups();
    process.exit(1);
  }
}

await main();
