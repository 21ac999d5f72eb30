/**
 * Builds the SDK's browser bundle (dist/conveyor.browser.js): `npm run build:browser`, and the
 * coordinator's on-demand build (server/web/browser-bundle.ts) use this one function, so the two
 * cannot drift. Two esbuild passes: the hashing Web Worker (browser-hash-worker.ts) on its own as
 * a classic script, then the SDK with that script embedded as a string (`define`), which it starts
 * from a Blob URL: the bundle stays one file, with nothing to host beside it.
 *
 *   node --import tsx client-sdk/browser-build.ts [--outfile=dist/conveyor.browser.js] [--log-level=warning]
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BuildResult, LogLevel } from 'esbuild';

const SDK = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_OUTFILE = path.join(SDK, '..', 'dist', 'conveyor.browser.js');

export interface BrowserBuildOptions {
  /** @default client-sdk/browser.ts */
  entry?: string;
  /** @default dist/conveyor.browser.js */
  outfile?: string;
  /** Write the files (else they are only in `outputFiles`). @default true */
  write?: boolean;
  /** @default true */
  minify?: boolean;
  /** @default 'silent' */
  logLevel?: LogLevel;
}

/** The bundle (`.js` and `.js.map`); `outputFiles` holds them when `write` is false. */
export async function buildBrowserBundle(options: BrowserBuildOptions = {}): Promise<BuildResult> {
  const esbuild = await import('esbuild');
  const common = {
    bundle: true,
    platform: 'browser',
    target: 'es2022',
    minify: options.minify ?? true,
    logLevel: options.logLevel ?? 'silent',
  } as const;
  const worker = await esbuild.build({
    ...common,
    entryPoints: [path.join(SDK, 'browser-hash-worker.ts')],
    format: 'iife',
    write: false,
  });
  const code = worker.outputFiles[0]?.text;
  if (!code) throw new Error('esbuild produced no hashing worker');
  return esbuild.build({
    ...common,
    entryPoints: [options.entry ?? path.join(SDK, 'browser.ts')],
    format: 'esm',
    sourcemap: true,
    outfile: options.outfile ?? DEFAULT_OUTFILE,
    write: options.write ?? true,
    define: { __CONVEYOR_HASH_WORKER__: JSON.stringify(code) },
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const outfile = path.resolve(arg('outfile') ?? DEFAULT_OUTFILE);
  const logLevel = (arg('log-level') ?? 'info') as LogLevel;
  await buildBrowserBundle({ outfile, logLevel });
  if (logLevel === 'info' || logLevel === 'debug' || logLevel === 'verbose') {
    process.stdout.write(`built ${path.relative(process.cwd(), outfile)}\n`);
  }
}
