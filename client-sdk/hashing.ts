import type { ChunkSource } from './sources.ts';

/** An incremental hash. Node uses node:crypto (OpenSSL, SHA-NI); browsers hash-wasm. */
export interface Hasher {
  update(data: Uint8Array): void;
  /** The raw digest bytes. */
  digest(): Uint8Array;
}

export type HashAlgorithm = 'md5' | 'sha256';

export interface HashProvider {
  create(algorithm: HashAlgorithm): Promise<Hasher>;
}

/** Digests of one chunk, base64 as the API wants them (`Content-MD5`, `x-amz-checksum-sha256`). */
export interface ChunkDigest {
  md5: string;
  sha256: string;
}

export interface SourceDigest {
  /** Base64 SHA-256 of the whole source. */
  sha256: string;
  chunks: ChunkDigest[];
}

/** Largest read while hashing: a 5 GiB chunk is never read whole. */
const HASH_SLICE = 8 * 1024 * 1024;

/**
 * One sequential pass over the source computing the whole-file SHA-256 (declared at init) and
 * every chunk's MD5 and SHA-256 (sent with presign and report). Doing them in the same pass
 * reads the file once for all three, and having every MD5 before the first presign is what lets
 * URLs be presigned in batches ahead of the workers (each URL signs its chunk's Content-MD5).
 */
export async function digestSource(
  source: ChunkSource,
  chunkSize: number,
  hashes: HashProvider,
  opts: { signal?: AbortSignal; onProgress?: (bytes: number) => void } = {},
): Promise<SourceDigest> {
  const whole = await hashes.create('sha256');
  const chunks: ChunkDigest[] = [];
  const total = Math.max(1, Math.ceil(source.size / chunkSize));
  // One buffer for the whole pass (sources that can read into it do): the pass allocates nothing per slice.
  const buffer = new Uint8Array(Math.min(HASH_SLICE, Math.max(1, source.size)));
  for (let i = 0; i < total; i++) {
    const md5 = await hashes.create('md5');
    const sha = await hashes.create('sha256');
    const end = Math.min(source.size, (i + 1) * chunkSize);
    for (let off = i * chunkSize; off < end; ) {
      opts.signal?.throwIfAborted();
      const n = Math.min(HASH_SLICE, end - off);
      const bytes = await source.read(off, n, buffer);
      whole.update(bytes);
      md5.update(bytes);
      sha.update(bytes);
      off += n;
      opts.onProgress?.(n);
    }
    chunks.push({ md5: toBase64(md5.digest()), sha256: toBase64(sha.digest()) });
  }
  return { sha256: toBase64(whole.digest()), chunks };
}

/** SHA-256 of the start, the end, the size and the identity: cheap, and enough to tell files apart. */
export async function fingerprint(source: ChunkSource, hashes: HashProvider, scope: string): Promise<string> {
  const h = await hashes.create('sha256');
  const enc = new TextEncoder();
  h.update(enc.encode(`${scope}\0${source.identity}\0${source.size}\0`));
  const edge = 1024 * 1024;
  h.update(await source.read(0, Math.min(edge, source.size)));
  if (source.size > edge) {
    const from = Math.max(edge, source.size - edge);
    h.update(await source.read(from, source.size - from));
  }
  return toHex(h.digest());
}

export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Hex SHA-256 of a string (resume-state keys). */
export async function fingerprintText(hashes: HashProvider, text: string): Promise<string> {
  const h = await hashes.create('sha256');
  h.update(new TextEncoder().encode(text));
  return toHex(h.digest());
}
