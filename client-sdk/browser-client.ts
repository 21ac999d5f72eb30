import { browserChunkHasher, wasmHashes } from './browser-hashing.ts';
import { ConveyorClientCore, type ConveyorClientOptions } from './client-core.ts';
import { LocalStorageResumeStore } from './resume-store.ts';
import { type DownloadSink, WebStreamSink } from './sinks.ts';
import { BlobSource } from './sources.ts';
import { FetchTransport } from './transport.ts';

export { wasmHashes };

/** The Conveyor client for browsers: `Blob`/`File` sources read and hashed in Web Workers, `WritableStream` destinations, fetch, localStorage state. */
export class ConveyorClient extends ConveyorClientCore<Blob, WritableStream<Uint8Array>> {
  constructor(options: ConveyorClientOptions) {
    super(options, {
      runtime: 'browser',
      hashes: wasmHashes,
      hasher: browserChunkHasher(options.hashWorkers, options.maxInflightBytes),
      bulk: new FetchTransport(options.fetch),
      resumeStore: typeof localStorage === 'undefined' ? undefined : new LocalStorageResumeStore(),
      openSource: async (b) => new BlobSource(b),
      openSink: async (s): Promise<DownloadSink> => new WebStreamSink(s),
    });
  }
}
