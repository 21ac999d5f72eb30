// A thread of the relay's hashing pool (piscina; server/relay/hash-pool.ts). Plain JavaScript so
// that it starts without the TypeScript loader. The bytes are not copied to get here: a chunk held
// in memory arrives as a SharedArrayBuffer (the request handler's thread keeps using it to send the
// part), a spooled one as its file, read here.
import { createHash } from 'node:crypto';
import fs from 'node:fs';

const SLICE = 4 * 1024 * 1024;
let scratch;

/** Base64 MD5 of `{ shared }` or of the file `{ file }`. */
export default function md5(task) {
  const h = createHash('md5');
  if (task.shared) return h.update(new Uint8Array(task.shared)).digest('base64');
  const fd = fs.openSync(task.file, 'r');
  try {
    scratch ??= Buffer.allocUnsafe(SLICE);
    for (;;) {
      const n = fs.readSync(fd, scratch, 0, SLICE, null);
      if (n === 0) break;
      h.update(scratch.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('base64');
}
