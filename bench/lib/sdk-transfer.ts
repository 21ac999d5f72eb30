/**
 * The SDK without the CLI (no commander, no progress bar), for `bench:sdk-memory -- --via sdk`:
 *   node bench/lib/run-ts.mjs bench/lib/sdk-transfer.ts upload <file> [--concurrency C] [--max-concurrency C] [--chunk-size S]
 *   node bench/lib/run-ts.mjs bench/lib/sdk-transfer.ts download <fileId> <out> [--concurrency C] [--max-concurrency C]
 * Server and key from CONVEYOR_URL / CONVEYOR_API_KEY. Prints one JSON line like the CLI's --json.
 */
import { parseArgs } from 'node:util';
import { ConveyorClient } from '../../client-sdk/index.ts';

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      concurrency: { type: 'string', default: '4' },
      'max-concurrency': { type: 'string' },
      'chunk-size': { type: 'string' },
      json: { type: 'boolean' },
      'no-resume': { type: 'boolean' },
    },
  });
  const initial = Number(values.concurrency);
  const max = Number(values['max-concurrency'] ?? Math.max(16, initial));
  const client = new ConveyorClient({ baseUrl: process.env.CONVEYOR_URL!, apiKey: process.env.CONVEYOR_API_KEY! });
  try {
    const [cmd, a, b] = positionals;
    if (cmd === 'upload') {
      const r = await client.upload(a!, {
        resume: false,
        concurrency: { initial, max },
        ...(values['chunk-size'] ? { chunkSize: Number(values['chunk-size']) } : {}),
      });
      console.log(JSON.stringify({ fileId: r.fileId, sha256: r.sha256, size: r.size, seconds: r.seconds }));
    } else if (cmd === 'download') {
      const r = await client.download(a!, b!, { resume: false, concurrency: { initial, max } });
      console.log(JSON.stringify({ sha256: r.sha256, verified: r.verified, size: r.size, seconds: r.seconds }));
    } else throw new Error(`unknown command ${cmd}`);
    return 0;
  } finally {
    client.close();
  }
}
