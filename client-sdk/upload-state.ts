import type { ResumeStore } from './resume-store.ts';

/**
 * What an upload persists to be resumed after a crash: the server's id and the whole file's SHA-256
 * (no second whole-file pass). Chunk digests are computed as each chunk is read for sending, so a
 * resumed upload hashes only the chunks it still sends. Version 1 also kept every chunk's digests
 * from a hashing pass before the upload; such a state is still accepted (the lists are ignored).
 */
export interface UploadState {
  v: 2;
  uploadId: string;
  baseUrl: string;
  size: number;
  chunkSize: number;
  /** Base64 SHA-256 of the whole file. */
  sha256: string;
  createdAt: string;
}

export const uploadStateKey = (fingerprint: string) => `upload-${fingerprint}`;

/** The saved state, if there is one and it is well-formed for a file of this size. */
export async function loadUploadState(
  store: ResumeStore | undefined,
  key: string,
  size: number,
): Promise<UploadState | undefined> {
  const s = (await store?.get(key).catch(() => undefined)) as
    | (Omit<Partial<UploadState>, 'v'> & { v?: number })
    | undefined;
  if (
    (s?.v !== 1 && s?.v !== 2) ||
    typeof s.uploadId !== 'string' ||
    s.size !== size ||
    typeof s.chunkSize !== 'number' ||
    typeof s.sha256 !== 'string'
  ) {
    return undefined;
  }
  return { ...s, v: 2 } as UploadState;
}
