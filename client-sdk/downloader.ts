import type { FileManifest } from './api.ts';
import { AdaptiveConcurrency, type ConcurrencyOptions, type ConcurrencySnapshot } from './concurrency.ts';
import type { TransferContext } from './context.ts';
import { FileChangedError, IntegrityError, NetworkError, TimeoutError } from './errors.ts';
import { fingerprintText, type Hasher, toBase64 } from './hashing.ts';
import { type PoolOutcome, WorkPool } from './pool.ts';
import { budgetOf, type RetryPolicy, resolveRetryPolicy, retryDecision } from './retry.ts';
import type { DownloadSink } from './sinks.ts';
import { type Progress, RateMeter, type Transfer } from './transfer.ts';
import { httpErrorFrom } from './transport.ts';

/** Options of `ConveyorClient.download`. */
export interface DownloadOptions {
  /** Initial level, or the adaptive pool's full options. @default { initial: 4, min: 1, max: 16 (Node) / 6 (browser) } */
  concurrency?: number | Partial<ConcurrencyOptions>;
  /** Overrides of the client's retry policy. @default the client's */
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  /** Keep verified chunks of an interrupted download of the same file to the same path. @default true */
  resume?: boolean;
  /** Check each chunk's SHA-256 (when the manifest has it) and the whole file's. @default true */
  verify?: boolean;
  /** Streams: chunks fetched ahead of the one being written, at most (memory ≈ this × chunk size). @default 8 */
  reorderWindow?: number;
  /** Fetch a fresh manifest when its URLs expire within this. @default 60_000 */
  urlRefreshMarginMs?: number;
  /** @default 250 */
  progressIntervalMs?: number;
}

export interface DownloadResult {
  fileId: string;
  fileName: string;
  size: number;
  etag: string;
  /** Base64 SHA-256 of the bytes written. */
  sha256: string;
  /** True when `sha256` was compared with the manifest's and matched. */
  verified: boolean;
  chunksTotal: number;
  chunksFetched: number;
  chunksSkipped: number;
  retries: number;
  resumed: boolean;
  seconds: number;
  concurrency: ConcurrencySnapshot;
}

interface DownloadState {
  v: 1;
  fileId: string;
  etag: string;
  size: number;
  chunkSize: number;
  done: number[];
}

export async function runDownload(
  ctx: TransferContext,
  fileId: string,
  sink: DownloadSink,
  opts: DownloadOptions,
  transfer: Transfer<DownloadResult>,
  signal: AbortSignal,
): Promise<DownloadResult> {
  const t0 = Date.now();
  const policy = resolveRetryPolicy(ctx.retry, opts.retry);
  const conc =
    typeof opts.concurrency === 'number'
      ? { initial: opts.concurrency, max: Math.max(opts.concurrency, 16) }
      : (opts.concurrency ?? {});
  const concurrency = new AdaptiveConcurrency(conc, ctx.runtime);
  concurrency.onChange = (c) => transfer.emit('concurrency', c);
  const verify = opts.verify !== false;
  const margin = opts.urlRefreshMarginMs ?? 60_000;

  let manifest = await ctx.api.manifest(fileId, signal);
  let refreshing: Promise<void> | undefined;
  const refresh = async () => {
    refreshing ??= ctx.api
      .manifest(fileId, signal)
      .then((m) => {
        if (m.etag !== manifest.etag) throw new FileChangedError();
        manifest = m;
      })
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };
  const { size, chunkSize, etag } = manifest;
  const total = manifest.chunks.length;

  // Resume: which chunks an earlier run wrote and verified.
  const stateKey =
    sink.identity && opts.resume !== false
      ? `download-${await fingerprintText(ctx.hashes, `${ctx.api.baseUrl}|${fileId}|${sink.identity}`)}`
      : undefined;
  const saved = stateKey
    ? ((await ctx.resumeStore?.get(stateKey).catch(() => undefined)) as DownloadState | undefined)
    : undefined;
  const usable = saved?.v === 1 && saved.etag === etag && saved.size === size && saved.chunkSize === chunkSize;
  const kept = await sink.open(size, usable);
  const done = new Set<number>(usable && kept ? saved.done : []);
  const resumed = done.size > 0;
  const skipped = done.size;
  let lastSave = 0;
  const save = async (force = false) => {
    if (!stateKey || !ctx.resumeStore || (!force && Date.now() - lastSave < 500)) return;
    lastSave = Date.now();
    const s: DownloadState = { v: 1, fileId, etag, size, chunkSize, done: [...done] };
    await ctx.resumeStore.set(stateKey, s);
  };
  await save(true);

  // Progress.
  const meter = new RateMeter();
  const inflight = new Map<number, number>();
  let phase: Progress['phase'] = 'transferring';
  let confirmed = manifest.chunks.filter((c) => done.has(c.chunkIndex)).reduce((s, c) => s + (c.end - c.start + 1), 0);
  let fetched = 0;
  let retries = 0;
  const progress = (): Progress => {
    let moving = 0;
    for (const b of inflight.values()) moving += b;
    const rate = meter.rate;
    return {
      phase,
      bytesTotal: size,
      bytesDone: confirmed + moving,
      chunksTotal: total,
      chunksDone: done.size,
      chunksSkipped: skipped,
      rate,
      etaSeconds: rate > 0 ? (size - confirmed - moving) / rate : undefined,
      retries,
      concurrency: concurrency.snapshot(),
      elapsedMs: Date.now() - t0,
      paused: transfer.paused,
    };
  };
  let lastEmit = 0;
  const emit = (force = false) => {
    if (!force && Date.now() - lastEmit < (opts.progressIntervalMs ?? 250)) return;
    lastEmit = Date.now();
    transfer.emit('progress', progress());
  };
  let pool: WorkPool<number> | undefined;
  transfer.attach({ pause: () => pool?.pause(), resume: () => pool?.resume() }, progress);

  // Sequential sinks: chunks are written in order from a bounded reorder window, hashed as written.
  const window = Math.max(1, opts.reorderWindow ?? 8);
  const buffered = new Map<number, Uint8Array>();
  let nextWrite = 0;
  let writing: Promise<void> = Promise.resolve();
  const streamHash: Hasher | undefined = sink.positional ? undefined : await ctx.hashes.create('sha256');
  const flush = () => {
    writing = writing.then(async () => {
      while (buffered.has(nextWrite)) {
        const bytes = buffered.get(nextWrite)!;
        await sink.write(manifest.chunks[nextWrite]!.start, bytes);
        streamHash?.update(bytes);
        buffered.delete(nextWrite);
        nextWrite++;
      }
    });
    return writing;
  };

  // Positional sinks: each GET's body goes to the file as it arrives, through a small staging
  // buffer (reused across chunks), hashed on the way; no chunk is ever held whole in memory.
  const spareStaging: Uint8Array[] = [];

  // Positional sinks: the whole-file SHA-256 follows the contiguous prefix of finished chunks,
  // read back from the file (just written, so from the page cache) while later chunks are still
  // on their way; the final check then only has the tail left instead of the whole file.
  const whole: Hasher | undefined = sink.positional && size > 0 ? await ctx.hashes.create('sha256') : undefined;
  let hashedTo = 0;
  let prefixChunks = 0;
  let catchingUp: Promise<void> | undefined;
  let catchUpError: unknown;
  const prefixEnd = () => {
    while (prefixChunks < total && done.has(prefixChunks)) prefixChunks++;
    return prefixChunks === total ? size : manifest.chunks[prefixChunks]!.start;
  };
  const catchUp = () => {
    if (!whole || catchingUp || catchUpError !== undefined) return;
    catchingUp = (async () => {
      const buffer = new Uint8Array(Math.min(HASH_BACK_SLICE, size));
      for (let end = prefixEnd(); hashedTo < end; end = prefixEnd()) {
        signal.throwIfAborted();
        const n = Math.min(HASH_BACK_SLICE, end - hashedTo);
        whole.update(await sink.read!(hashedTo, n, buffer));
        hashedTo += n;
      }
    })()
      .catch((err) => {
        catchUpError = err;
      })
      .finally(() => {
        catchingUp = undefined;
      });
  };
  /** The whole file's SHA-256, once every chunk is written. */
  const finishWhole = async (): Promise<string> => {
    if (!whole) return toBase64((await ctx.hashes.create('sha256')).digest());
    while (catchingUp) await catchingUp;
    catchUp();
    while (catchingUp) await catchingUp;
    if (catchUpError !== undefined) throw catchUpError;
    if (hashedTo !== size) throw new Error(`internal: hashed ${hashedTo} of ${size} bytes`);
    return toBase64(whole.digest());
  };

  const counts = new Map<number, { retries: number; throttles: number; attempts: number }>();
  const fetchChunk = async (i: number, taskSignal: AbortSignal): Promise<PoolOutcome> => {
    const c = counts.get(i) ?? { retries: 0, throttles: 0, attempts: 0 };
    counts.set(i, c);
    let staged: StagedWriter | undefined;
    try {
      if (Date.parse(manifest.expiresAt) - Date.now() < margin) await refresh();
      const chunk = manifest.chunks[i]!;
      const length = chunk.end - chunk.start + 1;
      c.attempts++;
      if (sink.positional) {
        const hash = verify && chunk.sha256 ? await ctx.hashes.create('sha256') : undefined;
        staged = new StagedWriter(sink, chunk.start, length, spareStaging.pop() ?? new Uint8Array(STAGING), hash);
      }
      const res = await ctx.bulk.send({
        method: 'GET',
        url: ctx.urlRewrite(chunk.url),
        headers: { range: `bytes=${chunk.start}-${chunk.end}`, 'if-match': etag },
        signal: taskSignal,
        idleTimeoutMs: ctx.requestTimeoutMs,
        expectedLength: length,
        ...(staged ? { onData: staged.onData } : {}),
        onProgress: (n) => {
          inflight.set(i, (inflight.get(i) ?? 0) + n);
          meter.add(n);
          concurrency.recordBytes(n);
          emit();
        },
      });
      if (res.status === 412) throw new FileChangedError();
      if (res.status !== 206 && res.status !== 200) throw httpErrorFrom(res, 'store');
      if (staged) {
        // A caller's transport that ignores `onData` hands back the whole body instead.
        if (staged.received === 0 && res.body.byteLength > 0) await staged.onData(res.body);
        await staged.flush();
      }
      const got = staged ? staged.received : res.body.byteLength;
      if (got !== length) {
        throw new NetworkError(`Chunk ${i}: ${got} bytes instead of ${length}`, { code: 'short_body' });
      }
      if (verify && chunk.sha256) {
        let digest = staged?.hash?.digest();
        if (!digest) {
          const h = await ctx.hashes.create('sha256');
          h.update(res.body);
          digest = h.digest();
        }
        if (toBase64(digest) !== chunk.sha256)
          throw new IntegrityError('chunk_checksum_mismatch', `Chunk ${i}: SHA-256 differs from the manifest`);
      }
      inflight.delete(i);
      if (sink.positional) {
        done.add(i);
        catchUp();
        await save();
      } else {
        buffered.set(i, res.body);
        done.add(i);
        await flush();
      }
      confirmed += length;
      fetched++;
      emit();
      return undefined;
    } catch (err) {
      inflight.delete(i);
      // A write of this attempt still on its way would land after the retry's: let it finish first.
      await staged?.settled();
      if (taskSignal.aborted || signal.aborted || err instanceof FileChangedError) throw err;
      c[budgetOf(err, policy)]++;
      // A corrupt chunk is retried like a network error: the bytes were damaged on the way.
      const d =
        err instanceof IntegrityError && c.retries <= policy.limit
          ? ({ action: 'retry', delayMs: 0, reason: err.code, throttled: false } as const)
          : retryDecision(err, c, policy);
      if (d.action === 'fail') throw err;
      retries++;
      if (d.action === 'represign') await refresh();
      if (d.action === 'retry' && d.throttled) concurrency.onThrottle(d.delayMs);
      if (err instanceof TimeoutError) concurrency.onTimeout();
      transfer.emit('retry', { chunkIndex: i, attempt: c.attempts, delayMs: d.delayMs, reason: d.reason });
      return { retryInMs: d.delayMs };
    } finally {
      if (staged?.idle) spareStaging.push(staged.buffer);
    }
  };

  try {
    const todo = manifest.chunks.map((c) => c.chunkIndex).filter((i) => !done.has(i) && size > 0);
    if (todo.length > 0) {
      pool = new WorkPool<number>({
        concurrency,
        run: fetchChunk,
        compare: (a, b) => a - b,
        ...(sink.positional ? {} : { canStart: (i: number) => i < nextWrite + window }),
      });
      if (transfer.paused) pool.pause();
      for (const i of todo) pool.add(i);
      await pool.run(signal);
    }
    spareStaging.length = 0;
    await writing;
    await save(true);

    phase = 'verifying';
    emit(true);
    let sha256: string;
    if (streamHash) sha256 = toBase64(streamHash.digest());
    else sha256 = await finishWhole();
    const verified = verify && manifest.checksumSha256 !== undefined;
    if (verified && sha256 !== manifest.checksumSha256) {
      if (stateKey) await ctx.resumeStore?.delete(stateKey);
      throw new IntegrityError(
        'checksum_mismatch',
        `The file's SHA-256 is ${sha256}; the server declared ${manifest.checksumSha256}`,
      );
    }
    await sink.close();
    if (stateKey) await ctx.resumeStore?.delete(stateKey);
    phase = 'done';
    emit(true);
    return {
      fileId,
      fileName: manifest.fileName,
      size,
      etag,
      sha256,
      verified,
      chunksTotal: total,
      chunksFetched: fetched,
      chunksSkipped: skipped,
      retries,
      resumed,
      seconds: (Date.now() - t0) / 1000,
      concurrency: concurrency.snapshot(),
    };
  } catch (err) {
    await save(true).catch(() => {});
    await sink.fail(err);
    throw err;
  }
}

/** Slice of a positional sink read back at a time for the whole-file SHA-256. */
const HASH_BACK_SLICE = 2 * 1024 * 1024;

/** Bytes gathered before one positional write of a streamed chunk. */
const STAGING = 1024 * 1024;

/**
 * Takes one GET's body piece by piece (`onData`), hashes it, and writes it to a positional sink at
 * the chunk's offset in `buffer`-sized writes. Never writes past the chunk's end: a longer body fails.
 */
class StagedWriter {
  received = 0;
  #fill = 0;
  #pos: number;
  /** The write (and the copying around it) in progress: pieces come one at a time, so at most one. */
  #busy: Promise<void> | undefined;
  constructor(
    readonly sink: DownloadSink,
    start: number,
    readonly length: number,
    readonly buffer: Uint8Array,
    readonly hash: Hasher | undefined,
  ) {
    this.#pos = start;
  }

  onData = (d: Uint8Array): void | Promise<void> => {
    if (this.received + d.byteLength > this.length) {
      throw new NetworkError(`The store sent more than the ${this.length} bytes asked for`, { code: 'long_body' });
    }
    this.received += d.byteLength;
    this.hash?.update(d);
    if (d.byteLength < this.buffer.byteLength - this.#fill) {
      this.buffer.set(d, this.#fill);
      this.#fill += d.byteLength;
      return;
    }
    return this.#track(this.#spill(d));
  };

  /** Writes what is staged. */
  flush(): Promise<void> {
    return this.#fill === 0 ? Promise.resolve() : this.#track(this.#writeStaged());
  }

  async #spill(d: Uint8Array): Promise<void> {
    const room = this.buffer.byteLength - this.#fill;
    this.buffer.set(d.subarray(0, room), this.#fill);
    this.#fill += room;
    await this.#writeStaged();
    const rest = d.subarray(room);
    if (rest.byteLength >= this.buffer.byteLength) {
      await this.sink.write(this.#pos, rest);
      this.#pos += rest.byteLength;
    } else {
      this.buffer.set(rest, 0);
      this.#fill = rest.byteLength;
    }
  }

  async #writeStaged(): Promise<void> {
    const n = this.#fill;
    await this.sink.write(this.#pos, this.buffer.subarray(0, n));
    this.#pos += n;
    this.#fill = 0;
  }

  #track(p: Promise<void>): Promise<void> {
    this.#busy = p;
    return p.finally(() => {
      if (this.#busy === p) this.#busy = undefined;
    });
  }

  /** True when nothing is using the buffer (it can be reused). */
  get idle(): boolean {
    return this.#busy === undefined;
  }

  /** Waits for a write in progress, ignoring its outcome. */
  async settled(): Promise<void> {
    await this.#busy?.catch(() => {});
  }
}

export type { FileManifest };
