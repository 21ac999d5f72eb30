import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  chunksOf,
  concatFiles,
  isErrno,
  md5Etag,
  metaPath,
  publishFile,
  readJson,
  readWithMeta,
  removeWithMeta,
  writeJsonAtomic,
} from './disk-files.ts';
import { type DiskTokenClaims, signDiskToken, verifyDiskToken } from './disk-token.ts';
import { ObjectStoreError } from './errors.ts';
import { assertPartNumber, multipartEtag, unquote, validateCompletion } from './multipart-rules.ts';
import type {
  CompleteInput,
  CreateMultipartInput,
  GetObjectInput,
  MultipartRef,
  ObjectBody,
  ObjectEncryption,
  ObjectHead,
  ObjectStore,
  PartInfo,
  PresignedRequest,
  PresignGetInput,
  PresignPartsInput,
  UploadPartInput,
} from './object-store.ts';

export interface DiskObjectStoreOptions {
  /** Directory that holds everything (`multipart/`, `objects/`); created when missing. */
  root: string;
  /** Where clients reach this coordinator, e.g. `http://127.0.0.1:8080`; presigned URLs start with it. */
  publicBaseUrl: string;
  /** HMAC key for presigned-URL tokens; every replica serving the same root must share it. */
  secret: Buffer | string;
  /** Clock in ms; tests move it to expire tokens. @default Date.now */
  now?: () => number;
}

/** The disk store's `uploadPart` also takes the SHA-256 it can verify (the HTTP route passes it). */
export type DiskUploadPartInput = UploadPartInput & { sha256?: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface UploadMeta {
  key: string;
  contentType?: string;
  metadata?: Record<string, string>;
  /** Recorded, not applied: see `createMultipartUpload`. */
  encryption?: ObjectEncryption;
}
/** Meta of a part: `<n>.part.<inode>.json`. */
interface PartMeta {
  etag: string;
  size: number;
}
/** Meta of a completed object: `<sha256(key)>.<inode>.json`. */
interface ObjectMeta extends PartMeta {
  key: string;
  contentType?: string;
  metadata?: Record<string, string>;
  encryption?: ObjectEncryption;
  lastModified: string;
}

/**
 * The embedded default store: S3's multipart semantics on a local directory.
 *
 * Layout under `root`:
 * - `multipart/<uploadId>/upload.json` (key, content type), `<n>.part` + `<n>.part.<inode>.json` (ETag, size)
 * - `objects/<sha256(key)>` + `<sha256(key)>.<inode>.json` (key, ETag, size, content type). Hashing the key keeps any key
 *   (up to S3's 1,024 bytes, with `/` or `..`) a single safe file name: no path traversal is possible.
 *
 * Presigned URLs point back at the coordinator (`server/http/disk-store-routes.ts`) with an HMAC token.
 */
export class DiskObjectStore implements ObjectStore {
  readonly kind = 'disk';
  /** This store hashes every part itself, so a signed SHA-256 is always enforced. */
  readonly capabilities = { verifiesSha256: true };
  readonly #root: string;
  readonly #baseUrl: string;
  readonly #secret: Buffer;
  readonly #now: () => number;

  constructor(options: DiskObjectStoreOptions) {
    if (!options.root) throw new TypeError(`DiskObjectStore: root must be a directory path, got ${options.root}`);
    const secret = Buffer.from(options.secret);
    if (secret.length < 16) throw new TypeError('DiskObjectStore: secret must be at least 16 bytes');
    this.#root = options.root;
    this.#baseUrl = options.publicBaseUrl.replace(/\/+$/, '');
    this.#secret = secret;
    this.#now = options.now ?? Date.now;
  }

  async createMultipartUpload(input: CreateMultipartInput): Promise<{ uploadId: string }> {
    const uploadId = randomUUID();
    const dir = this.#uploadDir(uploadId);
    await mkdir(dir, { recursive: true });
    // The disk store is the local, single-machine default: it records the requested SSE mode so the
    // API behaves as with S3 (status, HeadObject), but encrypting the disk is the operator's job
    // (an encrypted volume). README "Encryption at rest" says so.
    const meta: UploadMeta = {
      key: input.key,
      contentType: input.contentType,
      metadata: input.metadata,
      ...(input.encryption ? { encryption: input.encryption } : {}),
    };
    await writeJsonAtomic(join(dir, 'upload.json'), meta);
    return { uploadId };
  }

  async presignUploadParts(input: PresignPartsInput): Promise<PresignedRequest[]> {
    const exp = this.#expiry(input.expiresInSeconds);
    return input.parts.map((part) => {
      assertPartNumber(part.partNumber);
      const claims: DiskTokenClaims = {
        op: 'put',
        key: input.key,
        uploadId: input.uploadId,
        partNumber: part.partNumber,
        contentLength: part.contentLength,
        ...(part.md5 ? { md5: part.md5 } : {}),
        ...(part.sha256 ? { sha256: part.sha256 } : {}),
        exp,
      };
      const headers: Record<string, string> = { 'content-length': String(part.contentLength) };
      if (part.md5) headers['content-md5'] = part.md5;
      if (part.sha256) headers['x-amz-checksum-sha256'] = part.sha256;
      const url = `${this.#baseUrl}/v1/disk-store/parts?token=${signDiskToken(this.#secret, claims)}`;
      return { url, method: 'PUT', headers, expiresAt: new Date(exp * 1000) };
    });
  }

  async presignGetObject(input: PresignGetInput): Promise<PresignedRequest> {
    const exp = this.#expiry(input.expiresInSeconds);
    const claims: DiskTokenClaims = { op: 'get', key: input.key, ...(input.range ? { range: input.range } : {}), exp };
    const headers: Record<string, string> = {};
    if (input.range) headers.range = `bytes=${input.range.start}-${input.range.end}`;
    const url = `${this.#baseUrl}/v1/disk-store/objects?token=${signDiskToken(this.#secret, claims)}`;
    return { url, method: 'GET', headers, expiresAt: new Date(exp * 1000) };
  }

  /** Claims of a token from one of this store's URLs; throws `DiskTokenError` (expired or invalid). */
  verifyToken(token: string): DiskTokenClaims {
    return verifyDiskToken(this.#secret, token, this.#now());
  }

  async uploadPart(input: DiskUploadPartInput, signal?: AbortSignal): Promise<{ etag: string }> {
    assertPartNumber(input.partNumber);
    const path = join(await this.#openUpload(input), `${input.partNumber}.part`);
    const written = await publishFile(path, chunksOf(input.body), {
      maxBytes: input.contentLength,
      signal,
      beforeRename: async (w) => {
        // S3 answers IncompleteBody when fewer bytes than Content-Length arrive.
        if (w.size !== input.contentLength) {
          throw new Error(`body has ${w.size} bytes, Content-Length said ${input.contentLength}`);
        }
        // S3 UploadPart: "BadDigest: The Content-MD5 or checksum value that you specified did not match".
        if (input.md5 !== undefined && w.md5.toString('base64') !== input.md5) {
          throw new ObjectStoreError('bad_digest', 'Content-MD5 does not match the part');
        }
        if (input.sha256 !== undefined && w.sha256.toString('base64') !== input.sha256) {
          throw new ObjectStoreError('bad_digest', 'x-amz-checksum-sha256 does not match the part');
        }
        const meta: PartMeta = { etag: partEtag(w.md5), size: w.size };
        await writeJsonAtomic(metaPath(path, w.ino), meta);
      },
    });
    return { etag: partEtag(written.md5) };
  }

  async listParts(input: MultipartRef): Promise<PartInfo[]> {
    const dir = await this.#openUpload(input);
    const numbers = (await readdir(dir))
      .map((name) => /^(\d+)\.part$/.exec(name)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const parts: PartInfo[] = [];
    for (const partNumber of numbers) {
      const meta = await this.#partMeta(join(dir, `${partNumber}.part`));
      if (meta) parts.push({ partNumber, ...meta });
    }
    return parts;
  }

  async completeMultipartUpload(input: CompleteInput, signal?: AbortSignal): Promise<{ etag: string; size: number }> {
    const dir = await this.#openUpload(input);
    const upload = (await readJson<UploadMeta>(join(dir, 'upload.json')))!;
    const paths = input.parts.map((p) => join(dir, `${p.partNumber}.part`));
    validateCompletion(input.parts, await Promise.all(paths.map((p) => this.#partMeta(p))));
    const etag = multipartEtag(input.parts.map((p) => p.etag));
    await mkdir(join(this.#root, 'objects'), { recursive: true });
    const dataPath = this.#objectPath(input.key);
    const written = await publishFile(dataPath, concatFiles(paths), {
      signal,
      beforeRename: async (w) => {
        const meta: ObjectMeta = {
          key: input.key,
          etag,
          size: w.size,
          contentType: upload.contentType,
          metadata: upload.metadata,
          ...(upload.encryption ? { encryption: upload.encryption } : {}),
          lastModified: new Date(this.#now()).toISOString(),
        };
        await writeJsonAtomic(metaPath(dataPath, w.ino), meta);
      },
    });
    await rm(dir, { recursive: true, force: true });
    return { etag, size: written.size };
  }

  async abortMultipartUpload(input: MultipartRef): Promise<void> {
    // S3 AbortMultipartUpload is idempotent for callers: an unknown upload has nothing left to discard.
    if (!UUID.test(input.uploadId)) return;
    await rm(this.#uploadDir(input.uploadId), { recursive: true, force: true });
  }

  async headObject(key: string): Promise<ObjectHead | null> {
    const meta = await this.#objectMeta(key);
    if (!meta) return null;
    return {
      size: meta.size,
      etag: meta.etag,
      contentType: meta.contentType,
      lastModified: new Date(meta.lastModified),
      ...(meta.encryption ? { encryption: headEncryption(meta.encryption) } : {}),
    };
  }

  async getObject(input: GetObjectInput): Promise<ObjectBody> {
    // A complete may replace the object between open and reading its meta: then try the new version.
    for (let attempt = 0; attempt < 3; attempt++) {
      const got = await this.#openObject(input);
      if (got) return got;
    }
    throw new ObjectStoreError('not_found', `no object ${input.key}`);
  }

  async deleteObject(key: string): Promise<void> {
    await removeWithMeta(this.#objectPath(key));
  }

  async checkReady(): Promise<void> {
    await mkdir(this.#root, { recursive: true });
    const probe = join(this.#root, `.ready-${randomUUID()}`);
    await writeFile(probe, 'ok');
    await rm(probe, { force: true });
  }

  /** One attempt of getObject; `null` when the file was replaced while opening it. */
  async #openObject(input: GetObjectInput): Promise<ObjectBody | null> {
    // Open first: the descriptor keeps reading this version even if a complete replaces the file meanwhile.
    const fh = await open(this.#objectPath(input.key), 'r').catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) throw new ObjectStoreError('not_found', `no object ${input.key}`);
      throw err;
    });
    let handedOver = false;
    try {
      const meta = await this.#objectMeta(input.key, (await fh.stat()).ino);
      if (!meta) return null;
      if (input.ifMatch !== undefined && input.ifMatch !== '*' && unquote(input.ifMatch) !== unquote(meta.etag)) {
        throw new ObjectStoreError('precondition_failed', 'If-Match does not match the object ETag');
      }
      let start = 0;
      let end = meta.size - 1;
      if (input.range) {
        // RFC 9110 §14.1.2: a first-pos at or past the end is unsatisfiable; a last-pos past the end
        // means "the remainder" (S3 GetObject behaves the same).
        if (input.range.start >= meta.size || input.range.end < input.range.start) {
          throw new ObjectStoreError('invalid_range', `range ${input.range.start}-${input.range.end} of ${meta.size}`);
        }
        start = input.range.start;
        end = Math.min(input.range.end, meta.size - 1);
      }
      const contentLength = end - start + 1;
      // The stream owns the descriptor from here (autoClose); an empty object needs no reads at all.
      const body = contentLength > 0 ? fh.createReadStream({ start, end }) : Readable.from([]);
      handedOver = contentLength > 0;
      return { body, contentLength, totalSize: meta.size, etag: meta.etag, contentType: meta.contentType };
    } finally {
      if (!handedOver) await fh.close();
    }
  }

  #expiry(expiresInSeconds: number): number {
    if (!(expiresInSeconds > 0)) throw new RangeError(`expiresInSeconds must be positive, got ${expiresInSeconds}`);
    return Math.floor(this.#now() / 1000) + Math.ceil(expiresInSeconds);
  }

  #uploadDir(uploadId: string): string {
    return join(this.#root, 'multipart', uploadId);
  }

  #objectPath(key: string): string {
    return join(this.#root, 'objects', createHash('sha256').update(key).digest('hex'));
  }

  /** The upload's directory; `no_such_upload` when it is unknown or belongs to another key (as S3 does). */
  async #openUpload(ref: MultipartRef): Promise<string> {
    if (UUID.test(ref.uploadId)) {
      const dir = this.#uploadDir(ref.uploadId);
      const meta = await readJson<UploadMeta>(join(dir, 'upload.json'));
      if (meta?.key === ref.key) return dir;
    }
    throw new ObjectStoreError('no_such_upload', `no multipart upload ${ref.uploadId} for ${ref.key}`);
  }

  /** ETag and size of a part file; `null` when it is gone. */
  async #partMeta(path: string): Promise<PartMeta | null> {
    const found = await readWithMeta<PartMeta>(path);
    if (!found) return null;
    return found.meta ?? { etag: await md5Etag(path), size: found.size };
  }

  /** Meta of a completed object; with `ino`, `null` when the file at the key is no longer that inode. */
  async #objectMeta(key: string, ino?: number): Promise<ObjectMeta | null> {
    const path = this.#objectPath(key);
    const found = await readWithMeta<ObjectMeta>(path, ino);
    if (!found) return null;
    if (found.meta) return found.meta;
    // Meta lost in a crash: the multipart ETag cannot be rebuilt from the data, a plain MD5 one still identifies it.
    return { key, etag: await md5Etag(path), size: found.size, lastModified: found.mtime.toISOString() };
  }
}

/** S3's ETag of a single-part upload: the quoted hex MD5 of its bytes. */
function partEtag(md5: Buffer): string {
  return `"${md5.toString('hex')}"`;
}

function headEncryption(e: ObjectEncryption): NonNullable<ObjectHead['encryption']> {
  return e.mode === 'SSE-KMS' && e.kmsKeyId ? { mode: e.mode, kmsKeyId: e.kmsKeyId } : { mode: e.mode };
}
