import { AbortError } from './errors.ts';

/**
 * A small pool of hashing threads, the same for Node's `worker_threads` and browsers' Web Workers:
 * the platform supplies `spawn` (node-platform.ts, browser-hashing.ts) and the worker scripts
 * (hash-worker.mjs, browser-hash-worker.ts) speak the protocol below. Jobs wait in one FIFO queue
 * and go to the first idle thread; threads start on first use and keep the process alive only
 * while they have work (Node: `ref` while busy, `unref` while idle).
 */

/** Where a worker reads from: a file descriptor (threads of one process share them) or a Blob (cloned by reference, not copied). */
export type WorkerSourceRef = { fd: number } | { blob: Blob };

/** A job for a hashing thread. */
export type WorkerJob =
  /**
   * MD5 and SHA-256 of `length` bytes at `start`; with `keep`, the bytes come back too (transferred,
   * not copied), read into `into` when given (a buffer of an earlier chunk, transferred here).
   */
  | { op: 'chunk'; src: WorkerSourceRef; start: number; length: number; keep: boolean; into?: ArrayBuffer }
  /** SHA-256 of the first `size` bytes, with `{ id, progress }` messages on the way. */
  | { op: 'whole'; src: WorkerSourceRef; size: number };

/** A job as sent to a thread. */
export type WorkerRequest = WorkerJob & { id: number };

/** What a hashing thread answers (digests are base64). */
export type WorkerReply =
  | { id: number; md5: string; sha256: string; buffer?: ArrayBuffer }
  | { id: number; sha256: string; md5?: undefined }
  | { id: number; progress: number }
  | { id: number; error: string };

/** One thread, as the platform exposes it. */
export interface WorkerPort {
  postMessage(message: WorkerRequest, transfer: ArrayBuffer[]): void;
  onMessage(listener: (reply: WorkerReply) => void): void;
  /** A failure of the thread itself (it did not start, it crashed), not of a job. */
  onError(listener: (err: Error) => void): void;
  /** Node: keep the process alive (busy) or not (idle). Absent in browsers. */
  ref?(): void;
  unref?(): void;
  terminate(): void;
}

/** The thread could not be started or died before answering anything (a CSP forbidding `blob:` workers…). */
export class WorkerUnavailableError extends Error {
  override readonly name = 'WorkerUnavailableError';
}

export interface WorkerPoolOptions {
  /** Threads at most (≥ 1). */
  size: number;
  spawn: () => WorkerPort;
}

type Job = {
  request: WorkerJob;
  resolve: (reply: WorkerReply) => void;
  reject: (err: unknown) => void;
  onProgress: ((bytes: number) => void) | undefined;
  signal: AbortSignal | undefined;
  onAbort?: () => void;
};

interface Thread {
  port: WorkerPort;
  job: (Job & { id: number }) | undefined;
  /** It answered at least once: a later failure is the job's, not the platform's. */
  proven: boolean;
}

export class WorkerPool {
  readonly size: number;
  readonly #spawn: () => WorkerPort;
  readonly #threads: Thread[] = [];
  readonly #queue: Job[] = [];
  #nextId = 1;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`A worker pool needs at least one thread, got ${options.size}`);
    }
    this.size = options.size;
    this.#spawn = options.spawn;
  }

  /** Jobs waiting for a thread. */
  get queued(): number {
    return this.#queue.length;
  }
  /** Threads running a job. */
  get busy(): number {
    return this.#threads.filter((t) => t.job).length;
  }
  /** Threads started. */
  get threads(): number {
    return this.#threads.length;
  }

  /** Runs one job; its `progress` messages go to `onProgress`. An abort ends a running job's thread. */
  run(
    request: WorkerJob,
    opts: { signal?: AbortSignal | undefined; onProgress?: ((bytes: number) => void) | undefined } = {},
  ): Promise<WorkerReply> {
    return new Promise<WorkerReply>((resolve, reject) => {
      if (this.#closed) return reject(new Error('The hashing pool is closed'));
      if (opts.signal?.aborted) return reject(new AbortError(opts.signal.reason));
      const job: Job = { request, resolve, reject, onProgress: opts.onProgress, signal: opts.signal };
      if (opts.signal) {
        job.onAbort = () => this.#abort(job);
        opts.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.#queue.push(job);
      this.#dispatch();
    });
  }

  /** Ends every thread; queued and running jobs are rejected. */
  close(): void {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) this.#settle(job, new Error('The hashing pool was closed'));
    for (const t of this.#threads.splice(0)) {
      if (t.job) this.#settle(t.job, new Error('The hashing pool was closed'));
      t.port.terminate();
    }
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      let thread = this.#threads.find((t) => !t.job);
      if (!thread && this.#threads.length < this.size) {
        try {
          thread = this.#start();
        } catch (err) {
          const job = this.#queue.shift()!;
          this.#settle(job, new WorkerUnavailableError(`A hashing thread could not start: ${String(err)}`));
          continue;
        }
      }
      if (!thread) return;
      const job = this.#queue.shift()!;
      const id = this.#nextId++;
      thread.job = { ...job, id };
      thread.port.ref?.();
      const request: WorkerRequest = { ...job.request, id };
      thread.port.postMessage(request, request.op === 'chunk' && request.into ? [request.into] : []);
    }
  }

  #start(): Thread {
    const port = this.#spawn();
    const thread: Thread = { port, job: undefined, proven: false };
    port.unref?.();
    port.onMessage((reply) => {
      const job = thread.job;
      if (!job || reply.id !== job.id) return;
      thread.proven = true;
      if ('progress' in reply) {
        job.onProgress?.(reply.progress);
        return;
      }
      thread.job = undefined;
      port.unref?.();
      if ('error' in reply) this.#settle(job, new Error(reply.error));
      else this.#settle(job, undefined, reply);
      this.#dispatch();
    });
    port.onError((err) => this.#lost(thread, err));
    this.#threads.push(thread);
    return thread;
  }

  /** A thread failed: its job is rejected, the thread is dropped (a new one starts when needed). */
  #lost(thread: Thread, err: Error): void {
    const at = this.#threads.indexOf(thread);
    if (at < 0) return;
    this.#threads.splice(at, 1);
    thread.port.terminate();
    const job = thread.job;
    thread.job = undefined;
    if (job) {
      this.#settle(
        job,
        thread.proven ? err : new WorkerUnavailableError(`A hashing thread failed to start: ${err.message}`),
      );
    }
    if (!this.#closed) this.#dispatch();
  }

  #abort(job: Job): void {
    const queued = this.#queue.indexOf(job);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      this.#settle(job, new AbortError(job.signal?.reason));
      return;
    }
    const thread = this.#threads.find((t) => t.job && t.job.resolve === job.resolve);
    if (!thread) return;
    // A thread busy with a synchronous read or hash cannot be interrupted: end it, start another later.
    this.#threads.splice(this.#threads.indexOf(thread), 1);
    thread.job = undefined;
    thread.port.terminate();
    this.#settle(job, new AbortError(job.signal?.reason));
    this.#dispatch();
  }

  #settle(job: Job, err: unknown, reply?: WorkerReply): void {
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    if (err !== undefined) job.reject(err);
    else job.resolve(reply!);
  }
}
