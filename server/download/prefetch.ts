import { Readable } from 'node:stream';
import type { ByteRange } from '../storage/object-store.ts';

/** Splits the inclusive range [start, end] into consecutive segments of at most `size` bytes. */
export function segmentRange(start: number, end: number, size: number): ByteRange[] {
  const out: ByteRange[] = [];
  for (let s = start; s <= end; s += size) out.push({ start: s, end: Math.min(end, s + size - 1) });
  return out;
}

export interface PrefetchOptions {
  segments: readonly ByteRange[];
  /** Fetches one segment whole; must stop promptly when `signal` aborts. */
  fetch: (segment: ByteRange, signal: AbortSignal) => Promise<Buffer>;
  /** Segments fetched ahead of the one being written. */
  window: number;
  signal?: AbortSignal;
  /** Told +1 / -1 as segment fetches start and settle (for the inflight gauge). */
  onInflight?: (delta: number) => void;
}

/**
 * A byte stream of the segments in order, fetched with up to `window` requests in flight.
 * It reads ahead no further than the window: a segment is only requested when an earlier
 * one has been handed to the consumer, and the consumer's backpressure stops the hand-over.
 * Destroying the stream (the client went away) aborts every fetch still in flight.
 * Memory: at most about `window + 1` segments.
 */
export function prefetchStream(opts: PrefetchOptions): Readable {
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });

  async function* segments(): AsyncGenerator<Buffer> {
    const queue: Array<Promise<Buffer>> = [];
    let next = 0;
    const launch = () => {
      const segment = opts.segments[next++]!;
      opts.onInflight?.(1);
      const pending = opts.fetch(segment, abort.signal).finally(() => opts.onInflight?.(-1));
      pending.catch(() => {}); // observed when its turn comes; never an unhandled rejection
      queue.push(pending);
    };
    try {
      while (queue.length < opts.window && next < opts.segments.length) launch();
      while (queue.length > 0) {
        const buffer = await queue.shift()!;
        if (next < opts.segments.length) launch();
        yield buffer;
      }
    } finally {
      abort.abort(new Error('download stream closed'));
      opts.signal?.removeEventListener('abort', onOuterAbort);
    }
  }

  // highWaterMark 1 byte: the stream asks for the next segment only once the last one is taken.
  return Readable.from(segments(), { objectMode: false, highWaterMark: 1 });
}

/** Reads a stream to the end into one Buffer; destroys it when `signal` aborts. */
export async function readBody(body: Readable, expected: number, signal: AbortSignal): Promise<Buffer> {
  const onAbort = () => body.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const out = Buffer.allocUnsafe(expected);
    let at = 0;
    for await (const chunk of body) {
      const c = chunk as Buffer;
      if (at + c.length > expected) throw new Error(`segment longer than the ${expected} bytes asked for`);
      c.copy(out, at);
      at += c.length;
    }
    if (at !== expected) throw new Error(`segment ended after ${at} of ${expected} bytes`);
    return out;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
