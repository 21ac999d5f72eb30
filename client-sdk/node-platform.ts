import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { ChunkHasher } from './chunk-hasher.ts';
import type { Hasher, HashProvider } from './hashing.ts';
import type { ResumeStore } from './resume-store.ts';
import type { DownloadSink } from './sinks.ts';
import type { ChunkSource } from './sources.ts';
import { WorkerPool, type WorkerPort, type WorkerReply, type WorkerSourceRef } from './worker-pool.ts';

/** Node-only pieces: node:crypto hashing, files as sources and sinks, a state directory. */

export const nodeHashes: HashProvider = {
  async create(algorithm): Promise<Hasher> {
    const h = createHash(algorithm);
    return {
      update: (data) => {
        h.update(data);
      },
      digest: () => h.digest(),
    };
  },
};

/**
 * Threads used by default: one per core the process may use but one, which is left to the thread
 * that moves the bytes (at least 1, at most 8). On 2 cores, two hashing threads kept the main
 * thread waiting for a CPU: p99 event-loop delay 28 ms during a 1 GiB upload, 14 ms with one, at
 * the same throughput (bench/sdk-workers.ts).
 */
export function defaultHashWorkers(): number {
  return Math.max(1, Math.min(8, os.availableParallelism() - 1));
}

/**
 * The Node hashing threads (`worker_threads` running hash-worker.mjs with node:crypto); `workers`
 * 0 hashes in this thread. Threads start on first use and never hold the process open when idle.
 */
export function nodeChunkHasher(workers = defaultHashWorkers(), maxInflightBytes?: number): ChunkHasher {
  if (!Number.isInteger(workers) || workers < 0) {
    throw new RangeError(`hashWorkers must be a whole number ≥ 0, got ${workers}`);
  }
  return new ChunkHasher({
    hashes: nodeHashes,
    pool: workers === 0 ? undefined : new WorkerPool({ size: workers, spawn: spawnHashThread }),
    ...(maxInflightBytes !== undefined ? { maxInflightBytes } : {}),
  });
}

const HASH_WORKER = new URL('./hash-worker.mjs', import.meta.url);

function spawnHashThread(): WorkerPort {
  // No execArgv: the thread needs no TypeScript loader (the parent's --import tsx would load one).
  const w = new Worker(HASH_WORKER, { execArgv: [], name: 'conveyor-hash' });
  return {
    postMessage: (m, transfer) => w.postMessage(m, transfer),
    onMessage: (l) => w.on('message', (r: WorkerReply) => l(r)),
    onError: (l) => {
      w.on('error', l);
      w.on('exit', (code) => l(new Error(`the hashing thread exited (code ${code})`)));
    },
    ref: () => w.ref(),
    unref: () => w.unref(),
    terminate: () => void w.terminate(),
  };
}

/** A file read with positional reads (`pread`): no stream, no whole-file buffer. */
export class FileSource implements ChunkSource {
  readonly type = undefined;
  private constructor(
    readonly handle: fs.FileHandle,
    readonly name: string,
    readonly size: number,
    readonly identity: string,
    readonly ownsHandle: boolean,
  ) {}

  /** Opens a path (closed by `close()`), or wraps a caller's `FileHandle` (left open). */
  static async open(file: string | fs.FileHandle): Promise<FileSource> {
    if (typeof file === 'string') {
      const abs = path.resolve(file);
      const handle = await fs.open(abs, 'r');
      try {
        const st = await handle.stat();
        if (!st.isFile()) throw new TypeError(`Not a regular file: ${abs}`);
        return new FileSource(handle, path.basename(abs), st.size, `file:${abs}:${st.mtimeMs}`, true);
      } catch (err) {
        await handle.close();
        throw err;
      }
    }
    const st = await file.stat();
    return new FileSource(file, `fd-${file.fd}`, st.size, `inode:${st.dev}:${st.ino}:${st.mtimeMs}`, false);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = into && into.byteLength >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.handle.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw new Error(`The file shrank while being read (at ${offset + got} of ${this.size})`);
      got += bytesRead;
    }
    return buf;
  }

  /** Hashing threads read the same descriptor (threads of a process share them) with their own preads. */
  workerRef(): WorkerSourceRef {
    return { fd: this.handle.fd };
  }

  async close(): Promise<void> {
    if (this.ownsHandle) await this.handle.close();
  }
}

/** One JSON file per transfer in `dir` (default `~/.conveyor/state`), written atomically (temp file + rename). */
export class FileResumeStore implements ResumeStore {
  constructor(readonly dir: string) {}
  #file(key: string): string {
    if (!/^[\w.-]+$/.test(key)) throw new TypeError(`Bad state key: ${key}`);
    return path.join(this.dir, `${key}.json`);
  }
  async get(key: string): Promise<unknown> {
    try {
      return JSON.parse(await fs.readFile(this.#file(key), 'utf8'));
    } catch {
      return undefined;
    }
  }
  async set(key: string, value: unknown): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.#file(key)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(value));
    await fs.rename(tmp, this.#file(key));
  }
  async delete(key: string): Promise<void> {
    await fs.rm(this.#file(key), { force: true });
  }
}

/** A file written with positional writes (`pwrite`), so chunks land in any order; resumable. */
export class FileSink implements DownloadSink {
  readonly positional = true;
  readonly identity: string;
  #handle: fs.FileHandle | undefined;
  constructor(readonly file: string) {
    this.identity = path.resolve(file);
  }
  async open(size: number, keep: boolean): Promise<boolean> {
    if (keep) {
      const st = await fs.stat(this.identity).catch(() => undefined);
      if (st?.isFile() && st.size === size) {
        this.#handle = await fs.open(this.identity, 'r+');
        return true;
      }
    }
    this.#handle = await fs.open(this.identity, 'w+');
    await this.#handle.truncate(size);
    return false;
  }
  async write(offset: number, bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.#handle!.write(bytes, done, bytes.byteLength - done, offset + done);
      done += bytesWritten;
    }
  }
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const buf = into && into.byteLength >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.#handle!.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  }
  async close(): Promise<void> {
    await this.#handle?.close();
    this.#handle = undefined;
  }
  async fail(): Promise<void> {
    // The partial file stays: a rerun resumes into it.
    await this.close().catch(() => {});
  }
}

/** A Node `Writable` (a socket, `process.stdout`, a gzip stream): written in order with backpressure. */
export class NodeWritableSink implements DownloadSink {
  readonly positional = false;
  readonly identity = undefined;
  constructor(readonly stream: Writable) {}
  async open(): Promise<boolean> {
    return false;
  }
  write(_offset: number, bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.stream.destroyed) return reject(new Error('The destination stream is closed'));
      const ok = this.stream.write(bytes, (err) => (err ? reject(err) : ok && resolve()));
      if (!ok) this.stream.once('drain', resolve);
    });
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }
  async fail(err: unknown): Promise<void> {
    this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
  }
}
