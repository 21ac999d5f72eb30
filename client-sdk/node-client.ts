import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Agent } from 'undici';
import { ConveyorClientCore, type ConveyorClientOptions } from './client-core.ts';
import {
  FileResumeStore,
  FileSink,
  FileSource,
  NodeWritableSink,
  nodeChunkHasher,
  nodeHashes,
} from './node-platform.ts';
import { caOptions, NodeHttpTransport } from './node-transport.ts';
import { type DownloadSink, WebStreamSink } from './sinks.ts';
import { BlobSource, type ChunkSource } from './sources.ts';

/** Node upload sources: a path, an open `FileHandle`, or a `Blob`/`File`. */
export type NodeUploadSource = string | FileHandle | Blob;
/** Node download destinations: a path (positional writes, resumable), a Node `Writable`, or a web `WritableStream`. */
export type NodeDownloadDestination = string | Writable | WritableStream<Uint8Array>;

export interface NodeClientOptions extends ConveyorClientOptions {
  /** Directory of the resume state files. @default `$CONVEYOR_STATE_DIR`, else `~/.conveyor/state` */
  stateDir?: string;
  /**
   * Extra PEM CA certificate(s) to trust, on top of Node's public roots and `NODE_EXTRA_CA_CERTS`,
   * for the coordinator's API calls and for chunk transfers (a private CA in front of either).
   * Ignored for the API calls when `fetch` is given, and for transfers when `transport` is. @default none
   */
  ca?: string | Buffer | Array<string | Buffer>;
}

/** The Conveyor client for Node: node:http keep-alive transport, node:crypto hashing, file state. */
export class ConveyorClient extends ConveyorClientCore<NodeUploadSource, NodeDownloadDestination> {
  readonly stateDir: string;
  constructor(options: NodeClientOptions) {
    const stateDir =
      options.stateDir ?? process.env.CONVEYOR_STATE_DIR ?? path.join(os.homedir(), '.conveyor', 'state');
    super(options.ca === undefined || options.fetch ? options : { ...options, fetch: fetchTrusting(options.ca) }, {
      runtime: 'node',
      hashes: nodeHashes,
      hasher: nodeChunkHasher(options.hashWorkers, options.maxInflightBytes),
      bulk: new NodeHttpTransport(options.ca === undefined ? {} : { ca: options.ca }),
      resumeStore: new FileResumeStore(stateDir),
      openSource: async (s): Promise<ChunkSource> => (s instanceof Blob ? new BlobSource(s) : FileSource.open(s)),
      openSink: async (d): Promise<DownloadSink> => {
        if (typeof d === 'string') return new FileSink(d);
        if (d instanceof Writable) return new NodeWritableSink(d);
        return new WebStreamSink(d);
      },
    });
    this.stateDir = stateDir;
  }
}

/** The global fetch with a dispatcher that also trusts `ca` (Node's fetch is undici; it takes a `dispatcher`). */
function fetchTrusting(ca: NonNullable<NodeClientOptions['ca']>): typeof globalThis.fetch {
  const dispatcher = new Agent({ connect: caOptions(ca) });
  return (input, init) => globalThis.fetch(input, { ...init, dispatcher } as RequestInit);
}
