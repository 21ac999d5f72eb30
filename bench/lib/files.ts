import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';

const MiB = 1024 * 1024;

/** Writes `size` bytes of random-looking data (one random block, stamped per block) and returns its base64 SHA-256. */
export async function makeFile(file: string, size: number): Promise<string> {
  const block = randomBytes(8 * MiB);
  const h = createHash('sha256');
  const fh = await fs.open(file, 'w');
  try {
    for (let off = 0, i = 0; off < size; off += block.length, i++) {
      const n = Math.min(block.length, size - off);
      block.writeUInt32BE(i, 0);
      h.update(block.subarray(0, n));
      await fh.write(block, 0, n, off);
    }
  } finally {
    await fh.close();
  }
  return h.digest('base64');
}

/** Base64 SHA-256 of a file, read in 8 MiB pieces. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await fs.open(file);
  try {
    for await (const d of fh.createReadStream({ highWaterMark: 8 * MiB })) h.update(d);
  } finally {
    await fh.close().catch(() => {});
  }
  return h.digest('base64');
}
