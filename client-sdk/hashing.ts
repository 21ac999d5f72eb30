import type { ChunkSource } from './sources.ts';

/**
 * An incremental hash. Node uses node:crypto (OpenSSL, SHA-NI); browsers hash-wasm. Upload chunks
 * are read and hashed by `ChunkHasher` (chunk-hasher.ts), in worker threads where there are some;
 * this interface is the in-thread path and the small hashes (fingerprints, downloads).
 */
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
