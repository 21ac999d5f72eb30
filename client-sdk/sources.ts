import type { WorkerSourceRef } from './worker-pool.ts';

/**
 * What an upload reads from: random access by offset, so each chunk is read just before it is
 * sent and the whole file is never in memory. `BlobSource` works everywhere; Node adds
 * `FileSource` (node-sources.ts) for paths and `FileHandle`s.
 */
export interface ChunkSource {
  /** The file name given to the server. */
  readonly name: string;
  readonly size: number;
  /** A media type, when known (a browser `File.type`). */
  readonly type?: string | undefined;
  /** What identifies the file for resuming besides its bytes: a path, or name + mtime for a File. */
  readonly identity: string;
  /** `length` bytes at `offset`; read into `into` (≥ `length` bytes) when given, the result may then be a view of it. */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** How a hashing thread reads the same bytes itself; undefined: only this thread can (hashed here). */
  workerRef?(): WorkerSourceRef | undefined;
  close(): Promise<void>;
}

export class BlobSource implements ChunkSource {
  readonly name: string;
  readonly size: number;
  readonly type: string | undefined;
  readonly identity: string;

  constructor(
    readonly blob: Blob,
    name?: string,
  ) {
    const file = blob as Blob & { name?: string; lastModified?: number };
    this.name = name ?? file.name ?? 'blob';
    this.size = blob.size;
    this.type = blob.type || undefined;
    this.identity = `blob:${this.name}:${file.lastModified ?? ''}:${this.type ?? ''}`;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
  }

  /** A Blob (a `File`) is cloned to a worker by reference: the bytes are not copied. */
  workerRef(): WorkerSourceRef {
    return { blob: this.blob };
  }

  async close(): Promise<void> {}
}
