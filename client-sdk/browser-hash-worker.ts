/**
 * The SDK's hashing Web Worker (the protocol is in worker-pool.ts). Not imported by the SDK:
 * browser-build.ts bundles it on its own and embeds the result in the browser bundle, which starts
 * it from a Blob URL, so the bundle stays one file. It reads its range with `Blob.slice` (a `File`
 * reaches the worker by reference, never copied) and hashes with hash-wasm, incrementally (WebCrypto's
 * `digest` is neither incremental nor MD5); the bytes go back as a transferred ArrayBuffer.
 */
import { createMD5, createSHA256, type IHasher } from 'hash-wasm';
import { toBase64 } from './hashing.ts';
import type { WorkerReply, WorkerRequest } from './worker-pool.ts';

/** Largest slice read at once when the bytes are not kept. */
const SLICE = 8 * 1024 * 1024;

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply, transfer?: Transferable[]): void;
  /** Jobs answered by this worker (diagnostics: devtools, the end-to-end test). */
  conveyorHashJobs: number;
}
const scope = globalThis as unknown as WorkerScope;
scope.conveyorHashJobs = 0;

let hashers: Promise<{ md5: IHasher; sha: IHasher }> | undefined;

function blobOf(req: WorkerRequest): Blob {
  if (!('blob' in req.src)) throw new Error('A browser hashing worker reads Blobs only');
  return req.src.blob;
}

async function read(blob: Blob, start: number, length: number): Promise<ArrayBuffer> {
  const buf = await blob.slice(start, start + length).arrayBuffer();
  if (buf.byteLength !== length) throw new Error(`The file shrank while being read (at ${start})`);
  return buf;
}

async function handle(req: WorkerRequest): Promise<[WorkerReply, Transferable[]]> {
  hashers ??= Promise.all([createMD5(), createSHA256()]).then(([md5, sha]) => ({ md5, sha }));
  const { md5, sha } = await hashers;
  const blob = blobOf(req);
  if (req.op === 'chunk') {
    md5.init();
    sha.init();
    if (req.keep) {
      const buffer = await read(blob, req.start, req.length);
      md5.update(new Uint8Array(buffer));
      sha.update(new Uint8Array(buffer));
      const reply = { id: req.id, md5: toBase64(md5.digest('binary')), sha256: toBase64(sha.digest('binary')), buffer };
      return [reply, [buffer]];
    }
    for (let off = 0; off < req.length; ) {
      const n = Math.min(SLICE, req.length - off);
      const bytes = new Uint8Array(await read(blob, req.start + off, n));
      md5.update(bytes);
      sha.update(bytes);
      off += n;
    }
    return [{ id: req.id, md5: toBase64(md5.digest('binary')), sha256: toBase64(sha.digest('binary')) }, []];
  }
  sha.init();
  for (let off = 0; off < req.size; ) {
    const n = Math.min(SLICE, req.size - off);
    sha.update(new Uint8Array(await read(blob, off, n)));
    off += n;
    scope.postMessage({ id: req.id, progress: n });
  }
  return [{ id: req.id, sha256: toBase64(sha.digest('binary')) }, []];
}

// One job at a time (the pool sends the next only after the answer), so the hashers are never shared.
scope.onmessage = (e) => {
  handle(e.data).then(
    ([reply, transfer]) => {
      scope.conveyorHashJobs++;
      scope.postMessage(reply, transfer);
    },
    (err: unknown) => scope.postMessage({ id: e.data.id, error: err instanceof Error ? err.message : String(err) }),
  );
};
