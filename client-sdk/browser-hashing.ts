import { createMD5, createSHA256 } from 'hash-wasm';
import { ChunkHasher } from './chunk-hasher.ts';
import type { Hasher, HashProvider } from './hashing.ts';
import { WorkerPool, type WorkerPort, type WorkerReply } from './worker-pool.ts';

/**
 * The hashing Web Worker's code (browser-hash-worker.ts, bundled), put in by the bundler
 * (`define`, browser-build.ts). A build without it — another bundler, a test that builds
 * browser.ts plainly — hashes in the main thread.
 */
declare const __CONVEYOR_HASH_WORKER__: string | undefined;

/** Browsers: WebCrypto has no incremental hashing and no MD5, so hash-wasm (WASM, ~500 MB/s) does both. */
export const wasmHashes: HashProvider = {
  async create(algorithm): Promise<Hasher> {
    const h = algorithm === 'md5' ? await createMD5() : await createSHA256();
    h.init();
    return {
      update: (data) => {
        h.update(data);
      },
      digest: () => h.digest('binary'),
    };
  },
};

/** Workers used by default: one per logical core, at most 4 (the page's own thread needs a core too). */
export function defaultBrowserHashWorkers(): number {
  const cores = typeof navigator === 'undefined' ? 2 : navigator.hardwareConcurrency || 2;
  return Math.max(1, Math.min(4, cores));
}

/**
 * Chunks read (`Blob.slice`) and hashed in Web Workers started from a Blob URL of the embedded
 * worker code; in the main thread where there is no `Worker`, no embedded code, `workers` is 0, or
 * the page's CSP refuses `blob:` workers (the first failure switches to the main thread for good).
 */
export function browserChunkHasher(workers = defaultBrowserHashWorkers(), maxInflightBytes?: number): ChunkHasher {
  if (!Number.isInteger(workers) || workers < 0) {
    throw new RangeError(`hashWorkers must be a whole number ≥ 0, got ${workers}`);
  }
  const code = typeof __CONVEYOR_HASH_WORKER__ === 'string' ? __CONVEYOR_HASH_WORKER__ : undefined;
  const usable = workers > 0 && code !== undefined && typeof Worker !== 'undefined' && typeof URL !== 'undefined';
  return new ChunkHasher({
    hashes: wasmHashes,
    pool: usable ? new WorkerPool({ size: workers, spawn: webWorkerSpawner(code) }) : undefined,
    ...(maxInflightBytes !== undefined ? { maxInflightBytes } : {}),
  });
}

function webWorkerSpawner(code: string): () => WorkerPort {
  let url: string | undefined;
  return () => {
    url ??= URL.createObjectURL(new Blob([code], { type: 'text/javascript' }));
    const w = new Worker(url, { name: 'conveyor-hash' });
    return {
      postMessage: (m, transfer) => w.postMessage(m, transfer),
      onMessage: (l) => w.addEventListener('message', (e: MessageEvent<WorkerReply>) => l(e.data)),
      onError: (l) => {
        w.addEventListener('error', (e: ErrorEvent) => {
          e.preventDefault();
          l(new Error(e.message || 'the hashing worker failed'));
        });
        w.addEventListener('messageerror', () => l(new Error('a message from the hashing worker could not be read')));
      },
      terminate: () => w.terminate(),
    };
  };
}
