import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Koa from 'koa';
import { diskStoreRouter } from '../../server/http/disk-store-routes.ts';
import { errorMiddleware } from '../../server/http/middleware.ts';
import { DiskObjectStore, type DiskObjectStoreOptions } from '../../server/storage/disk-object-store.ts';

export interface DiskStoreFixture {
  store: DiskObjectStore;
  root: string;
  baseUrl: string;
  close(): Promise<void>;
}

/**
 * A DiskObjectStore in a fresh temp directory with its presigned-URL routes served on
 * 127.0.0.1:<random port>, behind the server's real error middleware.
 */
export async function startDiskStore(
  options: Partial<Pick<DiskObjectStoreOptions, 'now' | 'secret'>> = {},
): Promise<DiskStoreFixture> {
  const root = await mkdtemp(join(tmpdir(), 'conveyor-disk-store-'));
  const app = new Koa();
  app.silent = true;
  app.use(errorMiddleware());
  // Listen first to learn the port (the store needs its public URL), attach Koa once routes exist:
  // app.callback() composes the middleware list at call time.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const store = new DiskObjectStore({
    root,
    publicBaseUrl: baseUrl,
    secret: options.secret ?? 'test-secret-test-secret',
    now: options.now,
  });
  const router = diskStoreRouter(store);
  app.use(router.routes()).use(router.allowedMethods());
  server.on('request', app.callback());
  return {
    store,
    root,
    baseUrl,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}
