import type { CompleteResponse } from './api.ts';
import type { PreparedChunk } from './chunk-hasher.ts';
import { chunkCount, chunkRange, pickChunkSize } from './chunk-size.ts';
import { AdaptiveConcurrency, type ConcurrencyOptions, type ConcurrencySnapshot } from './concurrency.ts';
import type { TransferContext } from './context.ts';
import { HTTPError, IntegrityError, NetworkError, TimeoutError } from './errors.ts';
import { type ChunkDigest, fingerprint } from './hashing.ts';
import { type PoolOutcome, WorkPool } from './pool.ts';
import { Presigner } from './presigner.ts';
import { budgetOf, type RetryPolicy, resolveRetryPolicy, retryDecision } from './retry.ts';
import type { ChunkSource } from './sources.ts';
import { type Progress, RateMeter, type Transfer } from './transfer.ts';
import { type BodySource, httpErrorFrom } from './transport.ts';
import { loadUploadState, type UploadState, uploadStateKey } from './upload-state.ts';

export type TransportMode = 'direct' | 'relay' | 'auto';

/** Options of `ConveyorClient.upload`. */
export interface UploadOptions {
  /** Name stored with the file. @default the file's base name (or `File.name`) */
  fileName?: string;
  /** @default `File.type`, else the server's `application/octet-stream` */
  contentType?: string;
  /** Up to 32 string entries stored with the upload. @default none */
  metadata?: Record<string, string>;
  /** Bytes per chunk (≥ 5 MiB except the last). @default 8 MiB, raised so the file fits 10,000 chunks */
  chunkSize?: number;
  /** Initial level, or the adaptive pool's full options. @default { initial: 4, min: 1, max: 16 (Node) / 6 (browser) } */
  concurrency?: number | Partial<ConcurrencyOptions>;
  /** `direct`: PUT to presigned S3 URLs; `relay`: through the coordinator; `auto`: direct, relay if S3 cannot be reached. @default 'direct' */
  transport?: TransportMode;
  /** Overrides of the client's retry policy for this upload. @default the client's */
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  /** Look for an earlier, interrupted upload of the same file and send only its missing chunks. @default true */
  resume?: boolean;
  /** Most chunks per presign call (also capped by the pool's level and the server's limit). @default 16 */
  presignBatchSize?: number;
  /** A presigned URL this close to expiry is refreshed before use. @default 60_000 */
  urlRefreshMarginMs?: number;
  /** Minimum time between two `progress` events. @default 250 */
  progressIntervalMs?: number;
}

export interface UploadResult {
  uploadId: string;
  /** The id to download the file with (today equal to `uploadId`). */
  fileId: string;
  size: number;
  etag: string;
  /** Base64 SHA-256 of the whole file, as declared at init and verified by the server. */
  sha256: string;
  chunksTotal: number;
  /** Chunks this run sent (fewer than `chunksTotal` when it resumed). */
  chunksSent: number;
  chunksSkipped: number;
  retries: number;
  resumed: boolean;
  transport: 'direct' | 'relay';
  seconds: number;
  /** The pool's final level, limits and the changes it went through. */
  concurrency: ConcurrencySnapshot;
  presignCalls: number;
}

const MAX_COMPLETE_ROUNDS = 3;
/**
 * Chunks up to this size are read whole (by a hashing thread) and sent from that buffer; larger
 * ones (a 5 GiB part) only get their digests there and are streamed from the source in slices.
 */
const KEEP_LIMIT = 64 * 1024 * 1024;

/**
 * Runs one upload: fingerprint → resume, or the whole file's SHA-256 (declared at init) + init → the
 * pool of chunk PUTs, each chunk read and hashed just before it is sent → complete.
 */
export async function runUpload(
  ctx: TransferContext,
  source: ChunkSource,
  opts: UploadOptions,
  transfer: Transfer<UploadResult>,
  signal: AbortSignal,
): Promise<UploadResult> {
  const t0 = Date.now();
  const { api } = ctx;
  const policy = resolveRetryPolicy(ctx.retry, opts.retry);
  const concOpts = typeof opts.concurrency === 'number' ? { initial: opts.concurrency } : (opts.concurrency ?? {});
  if (typeof opts.concurrency === 'number')
    Object.assign(concOpts, { max: Math.max(opts.concurrency, defaultMax(ctx)) });
  const concurrency = new AdaptiveConcurrency(concOpts, ctx.runtime);
  concurrency.onChange = (c) => transfer.emit('concurrency', c);
  let mode: 'direct' | 'relay' = opts.transport === 'relay' ? 'relay' : 'direct';
  let directWorked = false;
  const meter = new RateMeter();
  let phase: Progress['phase'] = 'preparing';
  let confirmed = 0;
  let hashed = 0;
  const inflight = new Map<number, number>();
  let chunksDone = 0;
  let skipped = 0;
  let sent = 0;
  let retries = 0;
  let pool: WorkPool<number> | undefined;
  let total = chunkCount(source.size, opts.chunkSize ?? pickChunkSize(source.size));

  const progress = (): Progress => {
    let moving = 0;
    for (const b of inflight.values()) moving += b;
    const bytesDone = phase === 'hashing' ? hashed : confirmed + moving;
    const rate = meter.rate;
    const left = source.size - bytesDone;
    return {
      phase,
      bytesTotal: source.size,
      bytesDone,
      chunksTotal: total,
      chunksDone,
      chunksSkipped: skipped,
      rate,
      etaSeconds: rate > 0 ? left / rate : undefined,
      retries,
      concurrency: concurrency.snapshot(),
      elapsedMs: Date.now() - t0,
      paused: transfer.paused,
    };
  };
  let lastEmit = 0;
  const emit = (force = false) => {
    const now = Date.now();
    if (!force && now - lastEmit < (opts.progressIntervalMs ?? 250)) return;
    lastEmit = now;
    transfer.emit('progress', progress());
  };
  transfer.attach({ pause: () => pool?.pause(), resume: () => pool?.resume() }, progress);

  // 1. Resume, or hash and init.
  const key = uploadStateKey(await fingerprint(source, ctx.hashes, `${api.baseUrl}|${opts.chunkSize ?? ''}`));
  let state: UploadState | undefined =
    opts.resume === false ? undefined : await loadUploadState(ctx.resumeStore, key, source.size);
  let missing: number[] | undefined;
  if (state) {
    const st = await api.status(state.uploadId, signal).catch((err: unknown) => {
      if (err instanceof HTTPError && err.status === 404) return undefined;
      throw err;
    });
    if (st && (st.status === 'INITIATED' || st.status === 'IN_PROGRESS')) missing = st.missingChunks;
    else if (st && (st.status === 'COMPLETED' || st.status === 'COMPLETING')) missing = [];
    else state = undefined;
  }
  if (!state) {
    const chunkSize = opts.chunkSize ?? pickChunkSize(source.size);
    phase = 'hashing';
    // One pass in order (SHA-256 cannot be split), in a hashing thread when there is one; the
    // chunks' MD5 and SHA-256 are computed later, in parallel, as each is read for sending.
    const sha256 = await ctx.hasher.wholeSha256(source, {
      signal,
      onProgress: (n) => {
        hashed += n;
        emit();
      },
    });
    const contentType = opts.contentType ?? source.type;
    const init = await api.initUpload(
      {
        fileName: opts.fileName ?? source.name,
        fileSize: source.size,
        chunkSize,
        checksumSha256: sha256,
        ...(contentType ? { contentType } : {}),
        ...(opts.metadata ? { metadata: opts.metadata } : {}),
      },
      randomKey('init'),
      signal,
    );
    state = {
      v: 2,
      uploadId: init.uploadId,
      baseUrl: api.baseUrl,
      size: source.size,
      chunkSize: init.chunkSize,
      sha256,
      createdAt: new Date().toISOString(),
    };
    await ctx.resumeStore?.set(key, state);
  }
  const st = state;
  const { uploadId, chunkSize } = st;
  total = chunkCount(source.size, chunkSize);
  /** Digests of the chunks read so far (the presigner signs each chunk's MD5 into its URL). */
  const digests = new Map<number, ChunkDigest>();
  const resumed = missing !== undefined;
  transfer.started(uploadId, resumed);
  const todo = new Set(missing ?? Array.from({ length: total }, (_, i) => i));
  skipped = total - todo.size;
  chunksDone = skipped;
  confirmed = source.size - [...todo].reduce((s, i) => s + chunkRange(source.size, chunkSize, i).length, 0);
  phase = 'transferring';
  emit(true);

  // 2. The pool.
  const counts = new Map<number, { attempts: number; retries: number; throttles: number }>();
  const ps = new Presigner({
    api,
    uploadId,
    digest: (j) => digests.get(j),
    batchSize: () => Math.min(opts.presignBatchSize ?? 16, concurrency.current),
    upcoming: () => [...todo].sort((a, b) => a - b),
    refreshMarginMs: opts.urlRefreshMarginMs ?? 60_000,
    signal,
  });

  // Reports of chunks already in the store go out in the background, a few at a time, so that a
  // worker moves on to its next chunk instead of waiting for the coordinator. A report that fails
  // for good (after the API client's own retries) fails the upload once the pool is done; the
  // chunk stays in the store and the rerun's resume finds it (missingChunks reads ListParts).
  const reporting = new Set<Promise<void>>();
  let reportError: unknown;
  const maxReporting = () => Math.max(1, Math.ceil(concurrency.current / 2));
  const report = async (i: number, body: Parameters<typeof api.report>[2]) => {
    while (reporting.size >= maxReporting()) await Promise.race(reporting);
    const p: Promise<void> = api
      .report(uploadId, i, body, signal)
      .then(() => undefined)
      .catch((err: unknown) => {
        reportError ??= err;
      })
      .finally(() => reporting.delete(p));
    reporting.add(p);
  };
  const reportsSettled = async () => {
    while (reporting.size > 0) await Promise.all(reporting);
    if (reportError !== undefined) throw reportError;
  };

  const sendChunk = async (i: number, taskSignal: AbortSignal): Promise<PoolOutcome> => {
    const c = counts.get(i) ?? { attempts: 0, retries: 0, throttles: 0 };
    counts.set(i, c);
    const { start, length } = chunkRange(source.size, chunkSize, i);
    const onProgress = (n: number) => {
      inflight.set(i, (inflight.get(i) ?? 0) + n);
      meter.add(n);
      concurrency.recordBytes(n);
      emit();
    };
    const via = mode;
    let prep: PreparedChunk | undefined;
    try {
      // Read and hashed (in a hashing thread when the client has them) just before it is sent,
      // and sent from that very buffer: the bytes that go out are those whose MD5 the URL signs,
      // and the store refuses them (BadDigest) if they changed on the way. A retry reads again.
      prep = await ctx.hasher.prepare(source, start, length, { keep: length <= KEEP_LIMIT, signal: taskSignal });
      const known = digests.get(i);
      if (known && known.md5 !== prep.md5) {
        throw new IntegrityError('source_changed', `Chunk ${i} changed between two reads (its MD5 differs)`);
      }
      digests.set(i, { md5: prep.md5, sha256: prep.sha256 });
      // Too large to keep: streamed from the source slice by slice as the socket takes them.
      const body: Uint8Array | BodySource = prep.bytes ?? {
        byteLength: length,
        read: (offset, n, into) => source.read(start + offset, n, into),
      };
      if (via === 'relay') {
        c.attempts++;
        const res = await ctx.bulk.send({
          method: 'PUT',
          url: `${api.baseUrl}/v1/uploads/${uploadId}/chunks/${i}`,
          headers: {
            authorization: api.authorization,
            'content-type': 'application/octet-stream',
            'content-md5': prep.md5,
          },
          body,
          signal: taskSignal,
          idleTimeoutMs: ctx.requestTimeoutMs,
          onProgress,
        });
        if (res.status < 200 || res.status >= 300) throw httpErrorFrom(res, 'coordinator');
        // Taken (2xx): the buffer is free to be read into for another chunk.
        prep.release({ reuse: true });
      } else {
        const p = await ps.get(i);
        taskSignal.throwIfAborted();
        c.attempts++;
        const res = await ctx.bulk.send({
          method: 'PUT',
          url: ctx.urlRewrite(p.url),
          headers: p.headers,
          body,
          signal: taskSignal,
          idleTimeoutMs: ctx.requestTimeoutMs,
          onProgress,
        });
        if (res.status < 200 || res.status >= 300) throw httpErrorFrom(res, 'store');
        prep.release({ reuse: true });
        directWorked = true;
        ps.forget(i);
        const etag = res.headers.etag;
        if (!etag) throw new NetworkError(`The store answered chunk ${i} without an ETag`, { code: 'missing_etag' });
        if (reportError !== undefined) throw reportError;
        await report(i, { etag, size: length, md5: prep.md5, sha256: prep.sha256, attempts: c.attempts });
      }
      inflight.delete(i);
      todo.delete(i);
      confirmed += length;
      chunksDone++;
      sent++;
      emit();
      return undefined;
    } catch (err) {
      inflight.delete(i);
      if (taskSignal.aborted || signal.aborted || (reportError !== undefined && err === reportError)) throw err;
      if (
        opts.transport === 'auto' &&
        via === 'direct' &&
        !directWorked &&
        err instanceof NetworkError &&
        mode === 'direct'
      ) {
        // The store cannot be reached from here (a firewall, CORS in a browser): go through the coordinator.
        mode = 'relay';
        transfer.emit('transport', { from: 'direct', to: 'relay', reason: err.message });
        return { retryInMs: 0 };
      }
      c[budgetOf(err, policy)]++;
      const d = retryDecision(err, c, policy);
      if (d.action === 'fail') {
        // S3 says `BadDigest`; the coordinator (relay path, local-disk store) says `bad_digest`.
        if (err instanceof HTTPError && (err.code === 'BadDigest' || err.code === 'bad_digest')) {
          throw new IntegrityError(
            'source_changed',
            `Chunk ${i} changed since it was hashed (the store refused its Content-MD5)`,
          );
        }
        throw err;
      }
      retries++;
      if (d.action === 'represign') ps.forget(i);
      if (d.action === 'retry' && d.throttled) concurrency.onThrottle(d.delayMs);
      if (err instanceof TimeoutError) concurrency.onTimeout();
      transfer.emit('retry', { chunkIndex: i, attempt: c.attempts, delayMs: d.delayMs, reason: d.reason });
      return { retryInMs: d.delayMs };
    } finally {
      // After a failure the transport may not be done with the bytes: the buffer is not reused.
      prep?.release();
    }
  };

  let completed: CompleteResponse | undefined;
  for (let round = 0; !completed; round++) {
    if (todo.size > 0) {
      pool = new WorkPool<number>({ concurrency, run: sendChunk, compare: (a, b) => a - b });
      if (transfer.paused) pool.pause();
      for (const i of [...todo].sort((a, b) => a - b)) pool.add(i);
      try {
        await pool.run(signal);
      } finally {
        await reportsSettled().catch((err: unknown) => {
          if (!signal.aborted) throw err;
        });
      }
    }
    phase = 'completing';
    emit(true);
    try {
      completed = await api.complete(uploadId, randomKey('complete'), signal);
    } catch (err) {
      const again =
        err instanceof HTTPError && err.code === 'missing_chunks' ? err.details.extra?.missingChunks : undefined;
      if (!Array.isArray(again) || round + 1 >= MAX_COMPLETE_ROUNDS) throw err;
      for (const i of again as number[]) todo.add(i);
      phase = 'transferring';
    }
  }
  await ctx.resumeStore?.delete(key);
  phase = 'done';
  emit(true);
  return {
    uploadId,
    fileId: completed.fileId,
    size: completed.size,
    etag: completed.etag,
    sha256: st.sha256,
    chunksTotal: total,
    chunksSent: sent,
    chunksSkipped: skipped,
    retries,
    resumed,
    transport: mode,
    seconds: (Date.now() - t0) / 1000,
    concurrency: concurrency.snapshot(),
    presignCalls: ps.calls,
  };
}

function defaultMax(ctx: TransferContext): number {
  return ctx.runtime === 'node' ? 16 : 6;
}

function randomKey(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${prefix}-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}
