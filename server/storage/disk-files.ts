import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';

/**
 * File-system primitives for DiskObjectStore.
 *
 * Every visible file appears by one `rename(2)` of a fully written, fsynced temp file in the
 * same directory, so a crash never leaves a half-written part or object under its real name
 * (POSIX rename: "...shall be atomic"; a temp file in the same directory keeps it on the
 * same file system).
 *
 * A data file's meta (ETag, size, content type) lives in `<data>.<inode>.json`, written
 * *before* the data is renamed into place (rename keeps the inode). The data rename is then
 * the single commit point: whoever sees the data finds the meta written for exactly that
 * data, and a concurrent replacement can never pair new data with old meta or vice versa.
 */

/** Temp files start with a dot so listings of real entries can skip them. */
export const TEMP_PREFIX = '.tmp-';

export interface WrittenFile {
  size: number;
  md5: Buffer;
  sha256: Buffer;
  /** Inode of the written file, kept by the rename. */
  ino: number;
}

/** Where the meta of the data file `dataPath` with inode `ino` lives. */
export function metaPath(dataPath: string, ino: number): string {
  return `${dataPath}.${ino}.json`;
}

/**
 * Streams `chunks` into a temp file next to `finalPath` (hashing on the way), fsyncs it, lets
 * `beforeRename` check it and write its meta, then renames it into place and removes the meta of
 * the file it replaced. `beforeRename` may throw to discard the data (e.g. a digest mismatch):
 * the temp file is always removed unless it was renamed.
 */
export async function publishFile(
  finalPath: string,
  chunks: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  opts: { maxBytes?: number; signal?: AbortSignal; beforeRename?: (written: WrittenFile) => Promise<void> | void },
): Promise<WrittenFile> {
  const temp = join(dirname(finalPath), `${TEMP_PREFIX}${randomUUID()}`);
  const md5 = createHash('md5');
  const sha256 = createHash('sha256');
  let size = 0;
  let renamed = false;
  const fh = await open(temp, 'wx');
  try {
    for await (const chunk of chunks) {
      opts.signal?.throwIfAborted();
      size += chunk.length;
      if (opts.maxBytes !== undefined && size > opts.maxBytes) {
        throw new Error(`body is longer than the ${opts.maxBytes} bytes announced`);
      }
      md5.update(chunk);
      sha256.update(chunk);
      // Awaiting each write is the back-pressure: the source is not read faster than the disk takes it.
      await fh.write(chunk);
    }
    await fh.sync();
    const written = { size, md5: md5.digest(), sha256: sha256.digest(), ino: (await fh.stat()).ino };
    await fh.close();
    await opts.beforeRename?.(written);
    const replaced = await statOrNull(finalPath);
    await rename(temp, finalPath);
    renamed = true;
    if (replaced && replaced.ino !== written.ino) await rm(metaPath(finalPath, replaced.ino), { force: true });
    return written;
  } finally {
    await fh.close().catch(() => {});
    if (!renamed) await rm(temp, { force: true });
  }
}

/** Writes a small JSON document atomically (temp file, fsync, rename). */
export async function writeJsonAtomic(finalPath: string, value: unknown): Promise<void> {
  await publishFile(finalPath, [Buffer.from(JSON.stringify(value))], {});
}

/** Parsed JSON, or `null` when the file does not exist. */
export async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return null;
    throw err;
  }
}

/**
 * The data file at `dataPath` (optionally: only if it is still inode `ino`) and its meta.
 * `null` when there is no such file. `meta` is `null` only if the meta was lost (a crash
 * in which the data rename reached the disk but the meta did not, or manual tampering).
 */
export async function readWithMeta<T>(
  dataPath: string,
  ino?: number,
): Promise<{ size: number; ino: number; mtime: Date; meta: T | null } | null> {
  const st = await statOrNull(dataPath);
  if (!st || (ino !== undefined && st.ino !== ino)) return null;
  return { size: st.size, ino: st.ino, mtime: st.mtime, meta: await readJson<T>(metaPath(dataPath, st.ino)) };
}

/** Removes a data file and its meta. */
export async function removeWithMeta(dataPath: string): Promise<void> {
  const st = await statOrNull(dataPath);
  await rm(dataPath, { force: true });
  if (st) await rm(metaPath(dataPath, st.ino), { force: true });
}

/** Quoted hex MD5 of a whole file: the plain S3 ETag, used when a crash lost the meta. */
export async function md5Etag(path: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `"${hash.digest('hex')}"`;
}

/** Yields the concatenated contents of `paths`, one after the other. */
export async function* concatFiles(paths: string[]): AsyncGenerator<Buffer> {
  for (const path of paths) {
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) yield chunk as Buffer;
  }
}

/** Iterates a Readable or yields a Buffer once, so both part bodies go through one code path. */
export function chunksOf(body: Readable | Buffer): AsyncIterable<Buffer> | Iterable<Buffer> {
  return Buffer.isBuffer(body) ? [body] : (body as AsyncIterable<Buffer>);
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

async function statOrNull(path: string) {
  return stat(path).catch((err: unknown) => (isErrno(err, 'ENOENT') ? null : Promise.reject(err)));
}
