import path from 'node:path';
import { openDatabase, runMigrations } from '../db/client.ts';
import { createApp } from './app.ts';
import { seedApiKeys } from './bootstrap.ts';
import { ConfigError, loadConfig } from './config.ts';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded.ts';
import { createCoordinatorServer, isLoopback } from './http-server.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { createObjectStore } from './storage/create-store.ts';
import type { ObjectStore } from './storage/object-store.ts';
import { loadTlsMaterial, type TlsFiles, type TlsMaterial } from './tls.ts';

/**
 * Entry point: configuration → embedded services when none are configured → app → listen.
 * SIGTERM/SIGINT drain: stop accepting, let in-flight requests finish (bounded), close the
 * pool, stop the embedded database. SIGHUP re-reads the TLS certificate and key.
 */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  let tls: { files: TlsFiles; material: TlsMaterial } | undefined;
  try {
    config = loadConfig();
    if (config.tlsCertFile && config.tlsKeyFile) {
      const files = { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, caFile: config.tlsCaFile };
      // Checked before anything starts: a bad certificate must not leave a half-started process.
      tls = { files, material: loadTlsMaterial(files) };
    }
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
    if (store.kind === 's3' && !config.s3TlsVerify) {
      logger.warn(
        'S3_TLS_VERIFY=false: the S3 endpoint certificate is NOT verified; anyone on the path can read and change objects',
      );
    }
    checkStoreAtStartup(store, logger);
    const app = createApp({ config, logger, metrics, db: database.db, pool: database.pool, store });
    // X-Forwarded-* are believed only behind a proxy the operator declared (Koa's ctx.ip/protocol/host).
    app.koa.proxy = config.trustProxy;
    cleanups.push(() => app.close());
    const { devKey } = await seedApiKeys(config, app.repos.apiKeys, logger);
    app.sweeper.start();

    const coordinator = createCoordinatorServer({
      handler: app.koa.callback(),
      ...(tls ? { tls } : {}),
      hstsMaxAgeSeconds: config.hstsMaxAgeSeconds,
      trustProxy: config.trustProxy,
      logger,
    });
    // Installed before listening. With TLS, SIGHUP means "reload the certificate", as for most
    // daemons; it replaces async-exit-hook's handler (from embedded-postgres), which exits with 129.
    if (tls) {
      process.removeAllListeners('SIGHUP');
      process.on('SIGHUP', () => {
        try {
          const m = coordinator.reloadCertificates();
          logger.info(
            { subject: m.subject, fingerprint256: m.fingerprint256, validTo: m.validTo },
            'TLS certificate reloaded',
          );
        } catch (err) {
          // A bad file on reload must not take a serving coordinator down: keep the current certificate.
          logger.error(
            { err: (err as Error).message },
            'TLS certificate reload failed; still serving the previous one',
          );
        }
      });
    }
    const { port } = await coordinator.listen(config.port, config.host);
    const url = config.publicUrl.replace(/:\d+$/, `:${port}`);
    logger.info(
      { url, store: store.kind, database: embedded ? 'embedded' : 'external', dataDir: config.dataDir },
      'conveyor listening',
    );
    if (tls) {
      logger.info(
        { subject: tls.material.subject, fingerprint256: tls.material.fingerprint256, validTo: tls.material.validTo },
        `serving HTTPS (HTTP/2, HTTP/1.1)${tls.files.caFile ? ' with client certificates' : ''}`,
      );
    } else if (!isLoopback(config.host)) {
      logger.warn(
        { host: config.host },
        'serving plain HTTP on a non-loopback address: set TLS_CERT_FILE and TLS_KEY_FILE, or keep it behind a TLS-terminating proxy (TRUST_PROXY=true)',
      );
    }
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
      if ((await coordinator.close(config.shutdownTimeoutSeconds * 1000)) === 'forced') {
        logger.warn('shutdown timeout reached: closed remaining connections');
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
    if (err instanceof ConfigError) {
      // e.g. S3_CA_FILE unreadable: the same one line as a bad variable.
      process.stderr.write(`${err.message}\n`);
      await runCleanups();
      process.exit(2);
    }
    logger.fatal({ err }, 'start-up failed');
    await runCleanups();
    process.exit(1);
  }
}

/**
 * One object-store probe at start-up, without waiting for it: an S3 endpoint whose certificate is
 * not trusted is a configuration problem worth an error line now, not only a failing /readyz.
 */
function checkStoreAtStartup(store: ObjectStore, logger: Logger): void {
  store.checkReady(AbortSignal.timeout(10_000)).catch((err: NodeJS.ErrnoException) => {
    const certificate = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(err.code ?? '');
    logger.error(
      { err: { message: err.message, code: err.code } },
      certificate
        ? 'object store endpoint certificate is not trusted: set S3_CA_FILE (or NODE_EXTRA_CA_CERTS) to the CA that issued it; /readyz fails until then'
        : 'object store not reachable at start-up; /readyz fails until it is',
    );
  });
}

await main();
