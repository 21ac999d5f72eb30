/**
 * Where a download writes. A positional sink (a Node file) takes chunks in any order at their
 * offsets; a sequential one (a stream) takes them in order, and the downloader keeps a bounded
 * reorder window in front of it.
 */
export interface DownloadSink {
  /** True: `write` accepts any offset, in any order. */
  readonly positional: boolean;
  /** Identifies the destination across runs (an absolute path); undefined: not resumable. */
  readonly identity: string | undefined;
  /** Prepares for `size` bytes. `keep`: an interrupted earlier run's bytes stay (resume). Returns false when they cannot be kept. */
  open(size: number, keep: boolean): Promise<boolean>;
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** Positional sinks: reads back what was written (the final whole-file check), into `into` when given. */
  read?(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
  /** The download failed: release the destination (a stream is errored). */
  fail(err: unknown): Promise<void>;
}

/** A WHATWG `WritableStream` (browsers' File System Access API, Node's web streams). */
export class WebStreamSink implements DownloadSink {
  readonly positional = false;
  readonly identity = undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  constructor(readonly stream: WritableStream<Uint8Array>) {}
  async open(): Promise<boolean> {
    this.#writer = this.stream.getWriter();
    return false;
  }
  async write(_offset: number, bytes: Uint8Array): Promise<void> {
    await this.#writer!.ready;
    await this.#writer!.write(bytes);
  }
  async close(): Promise<void> {
    await this.#writer!.close();
  }
  async fail(err: unknown): Promise<void> {
    await this.#writer?.abort(err).catch(() => {});
  }
}
