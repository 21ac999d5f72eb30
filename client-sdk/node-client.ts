import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ConveyorClientCore, type ConveyorClientOptions } from './client-core.ts';
import { FileResumeStore, FileSink, FileSource, NodeWritableSink, nodeHashes } from './node-platform.ts';
import { NodeHttpTransport } from './node-transport.ts';
import { type DownloadSink, WebStreamSink } from './sinks.ts';
import { BlobSource, type ChunkSource } from './sources.ts';

/** Node upload sources: a path, an open `FileHandle`, or a `Blob`/`File`. */
export type NodeUploadSource = string | FileHandle | Blob;
/** Node download destinations: a path (positional writes, resumable), a Node `Writable`, or a web `WritableStream`. */
export type NodeDownloadDestination = string | Writable | WritableStream<Uint8Array>;

export interface NodeClientOptions extends ConveyorClientOptions {
  /** Directory of the resume state files. @default `$CONVEYOR_STATE_DIR`, else `~/.conveyor/state` */
  stateDir?: string;
}

/** The Conveyor client for Node: node:http keep-alive transport, node:crypto hashing, file state. */
export class ConveyorClient extends ConveyorClientCore<NodeUploadSource, NodeDownloadDestination> {
  readonly stateDir: string;
  constructor(options: NodeClientOptions) {
    const stateDir =
      options.stateDir ?? process.env.CONVEYOR_STATE_DIR ?? path.join(os.homedir(), '.conveyor', 'state');
    super(options, {
      runtime: 'node',
      hashes: nodeHashes,
      bulk: new NodeHttpTransport(),
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
