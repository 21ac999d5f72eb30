import { createMD5, createSHA256 } from 'hash-wasm';
import { ConveyorClientCore, type ConveyorClientOptions } from './client-core.ts';
import type { Hasher, HashProvider } from './hashing.ts';
import { LocalStorageResumeStore } from './resume-store.ts';
import { type DownloadSink, WebStreamSink } from './sinks.ts';
import { BlobSource } from './sources.ts';
import { FetchTransport } from './transport.ts';

/** Browsers: WebCrypto has no incremental hashing and no MD5, so hash-wasm (WASM, ~500 MB/s) does both. */
export const wasmHashes: HashProvider = {
  async create(algorithm): Promise<Hasher> {
    const h = algorithm === 'md5' ? await createMD5() : await createSHA256();
    h.init();
    return {
      update: (data) => {
        h.update(data);
      },
      digest: () => h.digest('binary'),
    };
  },
};

/** The Conveyor client for browsers: `Blob`/`File` sources, `WritableStream` destinations, fetch, localStorage state. */
export class ConveyorClient extends ConveyorClientCore<Blob, WritableStream<Uint8Array>> {
  constructor(options: ConveyorClientOptions) {
    super(options, {
      runtime: 'browser',
      hashes: wasmHashes,
      bulk: new FetchTransport(options.fetch),
      resumeStore: typeof localStorage === 'undefined' ? undefined : new LocalStorageResumeStore(),
      openSource: async (b) => new BlobSource(b),
      openSink: async (s): Promise<DownloadSink> => new WebStreamSink(s),
    });
  }
}
