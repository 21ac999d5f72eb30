import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A file of random bytes in a fresh temp dir (written 4 MiB at a time), with its base64 SHA-256. */
export async function randomFile(
  bytes: number,
  name = 'data.bin',
): Promise<{ dir: string; file: string; sha256: string; cleanup(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-sdk-'));
  const file = path.join(dir, name);
  const fh = await fs.open(file, 'w');
  const hash = createHash('sha256');
  try {
    for (let left = bytes; left > 0; ) {
      const block = randomBytes(Math.min(left, 4 * 1024 * 1024));
      hash.update(block);
      await fh.write(block);
      left -= block.length;
    }
  } finally {
    await fh.close();
  }
  return { dir, file, sha256: hash.digest('base64'), cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  const fh = await fs.open(file, 'r');
  try {
    for await (const chunk of fh.createReadStream()) hash.update(chunk as Buffer);
  } finally {
    await fh.close().catch(() => {});
  }
  return hash.digest('base64');
}
