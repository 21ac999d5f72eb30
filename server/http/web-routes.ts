import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Logger } from '../logger.ts';
import { BrowserBundle, type BundleFile, BundleUnavailableError, servedFile } from '../web/browser-bundle.ts';
import { ApiError } from './errors.ts';

export interface WebDeps {
  log?: Logger;
  /** @default the SDK's bundle under dist/, built on demand */
  bundle?: BrowserBundle;
  /** The page's own files. @default server/web/public */
  publicDir?: string;
}

const PUBLIC_DIR = fileURLToPath(new URL('../web/public/', import.meta.url));

/** The page's files: name → media type. Nothing else under `publicDir` is served. */
const PAGE_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * The page's policy: scripts only from here, plus WebAssembly (the SDK hashes with hash-wasm);
 * `fetch` to here and to the object store, whose origin the page cannot know in advance; Web Workers
 * from `blob:` URLs (the SDK's hashing workers are embedded in its bundle and started that way).
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "connect-src 'self' http: https:",
  "img-src 'self' data:",
  "style-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The upload page at `/` and its assets under `/assets/`, including the SDK's browser bundle.
 * No authentication: the page holds no data; it asks the user for an API key and sends it to /v1.
 */
export function webRouter(deps: WebDeps = {}): Router {
  const router = new Router();
  const bundle = deps.bundle ?? new BrowserBundle(deps.log ? { log: deps.log } : {});
  const publicDir = deps.publicDir ?? PUBLIC_DIR;
  const cache = new Map<string, Promise<BundleFile>>();
  const pageFile = (name: string): Promise<BundleFile> => {
    let p = cache.get(name);
    if (!p) {
      p = fs.readFile(path.join(publicDir, name)).then(servedFile);
      p.catch(() => cache.delete(name));
      cache.set(name, p);
    }
    return p;
  };

  router.get('/', async (ctx) => {
    ctx.set('Content-Security-Policy', CSP);
    // The page may be opened with ?key=…; it removes it from the address bar, and this keeps it out of Referer.
    ctx.set('Referrer-Policy', 'no-referrer');
    send(ctx, await pageFile('index.html'), PAGE_FILES['index.html']!);
  });

  router.get('/assets/:name', async (ctx) => {
    const { name } = ctx.params as { name: string };
    const type = PAGE_FILES[name];
    if (type && name !== 'index.html') {
      send(ctx, await pageFile(name), type);
      return;
    }
    if (name !== 'conveyor.browser.js' && name !== 'conveyor.browser.js.map') throw new ApiError('not_found');
    const built = await bundle.get().catch((err: unknown) => {
      if (err instanceof BundleUnavailableError) throw new ApiError('browser_bundle_unavailable', err.message);
      throw err;
    });
    const file = name.endsWith('.map') ? built.map : built.js;
    if (!file) throw new ApiError('not_found');
    send(ctx, file, name.endsWith('.map') ? 'application/json' : 'text/javascript; charset=utf-8');
  });

  return router;
}

/** Answers with `file`, or `304` when the client's copy is current (revalidated on every load). */
function send(ctx: Context, file: BundleFile, type: string): void {
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('X-Content-Type-Options', 'nosniff');
  ctx.set('ETag', file.etag);
  ctx.type = type;
  ctx.status = 200;
  if (ctx.fresh) {
    ctx.status = 304;
    return;
  }
  ctx.body = file.body;
}
