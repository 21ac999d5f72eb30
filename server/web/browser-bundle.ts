import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.ts';

/** The repository root (this file is server/web/browser-bundle.ts). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** One built file, ready to serve. */
export interface BundleFile {
  body: Buffer;
  /** A strong validator of `body` (RFC 9110 §8.8.3). */
  etag: string;
}

export interface Bundle {
  js: BundleFile;
  map: BundleFile | undefined;
}

/** Thrown when the bundle is neither built nor buildable here (no esbuild: a production install). */
export class BundleUnavailableError extends Error {
  override readonly name = 'BundleUnavailableError';
}

export interface BrowserBundleOptions {
  /** The SDK's browser entry point. @default client-sdk/browser.ts */
  entry?: string;
  /** Where `npm run build:browser` writes it. @default dist/conveyor.browser.js */
  outfile?: string;
  log?: Logger;
}

/**
 * The SDK's browser bundle (dist/conveyor.browser.js) for the web page. `npm start` builds it
 * first (`prestart`); when it is missing anyway, or older than the SDK's sources (a developer
 * editing client-sdk/, a test run), it is built once, on first use, by the function behind
 * package.json's `build:browser` script (client-sdk/browser-build.ts). Kept in memory afterwards.
 */
export class BrowserBundle {
  readonly entry: string;
  readonly outfile: string;
  readonly #log: Logger | undefined;
  #loading: Promise<Bundle> | undefined;

  constructor(options: BrowserBundleOptions = {}) {
    this.entry = options.entry ?? path.join(ROOT, 'client-sdk', 'browser.ts');
    this.outfile = options.outfile ?? path.join(ROOT, 'dist', 'conveyor.browser.js');
    this.#log = options.log;
  }

  /** The bundle, built if needed. Concurrent callers share one build; a failed one is tried again next time. */
  get(): Promise<Bundle> {
    this.#loading ??= this.#load().catch((err: unknown) => {
      this.#loading = undefined;
      throw err;
    });
    return this.#loading;
  }

  async #load(): Promise<Bundle> {
    const built = await mtime(this.outfile);
    const sources = await newestSource(path.dirname(this.entry));
    if (built !== undefined && (sources === undefined || built >= sources)) {
      const map = await fs.readFile(`${this.outfile}.map`).catch(() => undefined);
      return { js: servedFile(await fs.readFile(this.outfile)), map: map && servedFile(map) };
    }
    const esbuild = await import('esbuild').catch(() => undefined);
    if (!esbuild) {
      if (built !== undefined) {
        this.#log?.warn({ outfile: this.outfile }, 'browser bundle is older than client-sdk/ and esbuild is absent');
        return { js: servedFile(await fs.readFile(this.outfile)), map: undefined };
      }
      throw new BundleUnavailableError(`${this.outfile} is missing: run \`npm run build:browser\``);
    }
    const t0 = Date.now();
    // The same build as package.json's `build:browser` (the SDK with its hashing worker embedded).
    const { buildBrowserBundle } = await import('../../client-sdk/browser-build.ts');
    const result = await buildBrowserBundle({ entry: this.entry, outfile: this.outfile, write: false });
    const js = result.outputFiles?.find((f) => f.path.endsWith('.js'));
    const map = result.outputFiles?.find((f) => f.path.endsWith('.js.map'));
    if (!js) throw new Error('esbuild produced no JavaScript');
    const bundle = { js: servedFile(Buffer.from(js.contents)), map: map && servedFile(Buffer.from(map.contents)) };
    this.#log?.info({ outfile: this.outfile, ms: Date.now() - t0 }, 'built the browser bundle');
    // Best effort: a read-only install still serves the bundle from memory.
    await this.#persist(bundle).catch((err: unknown) =>
      this.#log?.warn({ err, outfile: this.outfile }, 'could not write the browser bundle'),
    );
    return bundle;
  }

  /** Writes through temp files and renames, so a concurrent reader (another process) never sees half a file. */
  async #persist(bundle: Bundle): Promise<void> {
    await fs.mkdir(path.dirname(this.outfile), { recursive: true });
    const files: Array<[string, Buffer]> = [[this.outfile, bundle.js.body]];
    if (bundle.map) files.unshift([`${this.outfile}.map`, bundle.map.body]);
    for (const [target, body] of files) {
      const tmp = `${target}.${process.pid}.tmp`;
      await fs.writeFile(tmp, body);
      await fs.rename(tmp, target);
    }
  }
}

/** `body` with its validator. */
export function servedFile(body: Buffer): BundleFile {
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

async function mtime(p: string): Promise<number | undefined> {
  return (await fs.stat(p).catch(() => undefined))?.mtimeMs;
}

/** The newest modification time of the SDK's TypeScript sources; undefined when they are not shipped. */
async function newestSource(dir: string): Promise<number | undefined> {
  const names = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  let newest: number | undefined;
  for (const name of names) {
    if (!name.endsWith('.ts')) continue;
    const m = await mtime(path.join(dir, name));
    if (m !== undefined && (newest === undefined || m > newest)) newest = m;
  }
  return newest;
}
