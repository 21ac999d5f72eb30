// A hashing thread of the Node SDK (worker_threads; the protocol is in worker-pool.ts). Plain
// JavaScript so that the thread starts without the TypeScript loader. It reads the range itself
// (pread on the file descriptor the main thread opened; threads share the process's descriptors)
// and sends back the digests and, when asked to keep them, the bytes: their ArrayBuffer is
// transferred, not copied.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { parentPort } from 'node:worker_threads';

// Hashing is background work: the thread that moves the bytes must win the CPU when they compete
// (a core short, the event loop stalls and every socket waits). On Linux a niceness is per thread
// and setpriority(PRIO_PROCESS, 0) sets the calling thread's only (elsewhere it would be the whole
// process's: left alone there).
if (process.platform === 'linux') {
  try {
    os.setPriority(0, os.constants.priority.PRIORITY_BELOW_NORMAL);
  } catch {
    // not permitted: stay at the process's priority
  }
}

/** Largest read when the bytes are not kept (1 MiB hashes as fast as 8 and holds 7 MiB less for the thread's life). */
const SLICE = 1024 * 1024;
let scratch;

/** Reads exactly `view.byteLength` bytes at `position` into `view`. */
async function readInto(src, view, position) {
  if ('fd' in src) {
    for (let got = 0; got < view.byteLength; ) {
      const n = fs.readSync(src.fd, view, got, view.byteLength - got, position + got);
      if (n === 0) throw new Error(`The file shrank while being read (at ${position + got})`);
      got += n;
    }
    return view;
  }
  const bytes = new Uint8Array(await src.blob.slice(position, position + view.byteLength).arrayBuffer());
  if (bytes.byteLength !== view.byteLength) throw new Error(`The blob shrank while being read (at ${position})`);
  return bytes;
}

async function chunk({ src, start, length, keep, into }) {
  const md5 = createHash('md5');
  const sha = createHash('sha256');
  if (keep) {
    // A file is read into the buffer of an earlier chunk when one came with the job (else a new
    // one); a Blob hands out a fresh ArrayBuffer of its own.
    const target = 'fd' in src ? new Uint8Array(into ?? new ArrayBuffer(length), 0, length) : { byteLength: length };
    const view = await readInto(src, target, start);
    md5.update(view);
    sha.update(view);
    return [{ md5: md5.digest('base64'), sha256: sha.digest('base64'), buffer: view.buffer }, [view.buffer]];
  }
  for (let off = 0; off < length; ) {
    const n = Math.min(SLICE, length - off);
    scratch ??= new Uint8Array(SLICE);
    const view = await readInto(src, scratch.subarray(0, n), start + off);
    md5.update(view);
    sha.update(view);
    off += n;
  }
  return [{ md5: md5.digest('base64'), sha256: sha.digest('base64') }, []];
}

async function whole({ id, src, size }) {
  const sha = createHash('sha256');
  for (let off = 0; off < size; ) {
    const n = Math.min(SLICE, size - off);
    scratch ??= new Uint8Array(SLICE);
    sha.update(await readInto(src, scratch.subarray(0, n), off));
    off += n;
    parentPort.postMessage({ id, progress: n });
  }
  return [{ sha256: sha.digest('base64') }, []];
}

parentPort.on('message', async (req) => {
  try {
    const [reply, transfer] = req.op === 'chunk' ? await chunk(req) : await whole(req);
    parentPort.postMessage({ id: req.id, ...reply }, transfer);
  } catch (err) {
    parentPort.postMessage({ id: req.id, error: err instanceof Error ? err.message : String(err) });
  }
});
