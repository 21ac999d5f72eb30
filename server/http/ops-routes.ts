import Router from '@koa/router';
import { sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import type { Metrics } from '../metrics.ts';
import type { ObjectStore } from '../storage/object-store.ts';

export interface OpsDeps {
  db: Db;
  store: ObjectStore;
  metrics: Metrics;
  /** True once shutdown has begun: readiness fails so load balancers stop sending work. */
  isShuttingDown: () => boolean;
}

const READY_CHECK_TIMEOUT_MS = 3_000;

/** `/healthz` (process up), `/readyz` (database and object store reachable), `/metrics`. */
export function opsRouter(deps: OpsDeps): Router {
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    const [database, objectStore] = await Promise.all([
      probe((signal) => deps.db.execute(sql`SELECT 1`).then(() => signal.throwIfAborted())),
      probe((signal) => deps.store.checkReady(signal)),
    ]);
    const ok = database === 'ok' && objectStore === 'ok' && !deps.isShuttingDown();
    ctx.status = ok ? 200 : 503;
    ctx.body = {
      status: ok ? 'ok' : 'unavailable',
      checks: { database, objectStore, store: deps.store.kind, shuttingDown: deps.isShuttingDown() },
    };
  });

  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });

  return router;
}

/** Runs one readiness check with a deadline; returns 'ok' or a short reason (never internals). */
async function probe(check: (signal: AbortSignal) => Promise<unknown>): Promise<string> {
  const signal = AbortSignal.timeout(READY_CHECK_TIMEOUT_MS);
  try {
    await Promise.race([
      check(signal),
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('timeout')))),
    ]);
    return 'ok';
  } catch (err) {
    return signal.aborted ? 'timeout' : ((err as { code?: string })?.code ?? 'unreachable');
  }
}
