// A thread of the relay's hashing pool (piscina; server/relay/hash-pool.ts). Plain JavaScript so
// that it starts without the TypeScript loader. The bytes are not copied to get here: a chunk held
// in memory arrives as a transferred ArrayBuffer and goes back the same way, a spooled one as its
// file, read here.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { move, transferableSymbol, valueSymbol } from 'piscina';

const SLICE = 4 * 1024 * 1024;
let scratch;

/**
 * Base64 MD5 of the file `{ file }`; or of the bytes `{ bytes }` (an ArrayBuffer transferred here),
 * which go back with the digest, transferred again.
 */
export default function md5(task) {
  const h = createHash('md5');
  if (task.bytes) {
    const digest = h.update(new Uint8Array(task.bytes)).digest('base64');
    return move({ [transferableSymbol]: task.bytes, [valueSymbol]: { md5: digest, bytes: task.bytes } });
  }
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
