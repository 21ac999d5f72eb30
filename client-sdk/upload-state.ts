import type { ResumeStore } from './resume-store.ts';

/** What an upload persists to be resumed after a crash: the server's id and the chunk digests (no re-hash). */
export interface UploadState {
  v: 1;
  uploadId: string;
  baseUrl: string;
  size: number;
  chunkSize: number;
  /** Base64 SHA-256 of the whole file. */
  sha256: string;
  /** Base64 MD5 and SHA-256 of each chunk. */
  md5: string[];
  chunkSha256: string[];
  createdAt: string;
}

export const uploadStateKey = (fingerprint: string) => `upload-${fingerprint}`;

/** The saved state, if there is one and it is well-formed for a file of this size. */
export async function loadUploadState(
  store: ResumeStore | undefined,
  key: string,
  size: number,
): Promise<UploadState | undefined> {
  const s = (await store?.get(key).catch(() => undefined)) as Partial<UploadState> | undefined;
  if (
    s?.v !== 1 ||
    typeof s.uploadId !== 'string' ||
    s.size !== size ||
    typeof s.chunkSize !== 'number' ||
    typeof s.sha256 !== 'string' ||
    !Array.isArray(s.md5) ||
    !Array.isArray(s.chunkSha256) ||
    s.md5.length !== Math.max(1, Math.ceil(size / s.chunkSize)) ||
    s.chunkSha256.length !== s.md5.length
  ) {
    return undefined;
  }
  return s as UploadState;
}
