/**
 * The SDK without the CLI (no commander, no progress bar), run as a child process so that its own
 * peak RSS and CPU can be measured apart from the benchmark's:
 *   node bench/lib/run-ts.mjs bench/lib/sdk-transfer.ts upload <file> [options]
 *   node bench/lib/run-ts.mjs bench/lib/sdk-transfer.ts upload-many <file>… [--files-concurrency F] [options]
 *   node bench/lib/run-ts.mjs bench/lib/sdk-transfer.ts download <fileId> <out> [options]
 * options: --concurrency C [--max-concurrency M | --fixed] [--chunk-size S] [--transport direct|relay]
 * Server and key from CONVEYOR_URL / CONVEYOR_API_KEY. Prints one JSON line: ids, hashes, seconds
 * (measured here, from the call to the result) and the seconds of each phase.
 */
import { parseArgs } from 'node:util';
import type { ConcurrencyOptions } from '../../client-sdk/concurrency.ts';
import { ConveyorClient } from '../../client-sdk/index.ts';

/** Seconds spent in each phase, from a transfer's progress events (phase changes are always emitted). */
function phaseClock() {
  const t0 = performance.now();
  const marks: Array<[string, number]> = [];
  return {
    on(phase: string) {
      if (marks.at(-1)?.[0] !== phase) marks.push([phase, performance.now()]);
    },
    done() {
      const end = performance.now();
      const out: Record<string, number> = {};
      marks.forEach(([p, t], i) => {
        if (p === 'done' || p === 'preparing') return;
        const next = marks[i + 1]?.[1] ?? end;
        out[p] = Math.round(((out[p] ?? 0) + (next - t) / 1000) * 100) / 100;
      });
      return { seconds: (end - t0) / 1000, phases: out };
    },
  };
}

export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      concurrency: { type: 'string', default: '4' },
      'max-concurrency': { type: 'string' },
      fixed: { type: 'boolean' },
      'chunk-size': { type: 'string' },
      transport: { type: 'string', default: 'direct' },
      'files-concurrency': { type: 'string', default: '4' },
      json: { type: 'boolean' },
      'no-resume': { type: 'boolean' },
    },
  });
  const initial = Number(values.concurrency);
  const concurrency: Partial<ConcurrencyOptions> = values.fixed
    ? { initial, min: initial, max: initial, adaptive: false }
    : { initial, max: Number(values['max-concurrency'] ?? Math.max(16, initial)) };
  const transport = values.transport === 'relay' ? 'relay' : 'direct';
  const chunkSize = values['chunk-size'] ? { chunkSize: Number(values['chunk-size']) } : {};
  const client = new ConveyorClient({
    baseUrl: process.env.CONVEYOR_URL!,
    apiKey: process.env.CONVEYOR_API_KEY!,
    resumeStore: false,
  });
  try {
    const [cmd, ...rest] = positionals;
    if (cmd === 'upload') {
      const clock = phaseClock();
      const t = client.upload(rest[0]!, { resume: false, transport, concurrency, ...chunkSize });
      t.on('progress', (p) => clock.on(p.phase));
      const r = await t;
      console.log(
        JSON.stringify({ fileId: r.fileId, sha256: r.sha256, size: r.size, retries: r.retries, ...clock.done() }),
      );
    } else if (cmd === 'upload-many') {
      const t0 = performance.now();
      const ids: string[] = [];
      let next = 0;
      let retries = 0;
      let size = 0;
      const failures: string[] = [];
      await Promise.all(
        Array.from({ length: Number(values['files-concurrency']) }, async () => {
          while (next < rest.length) {
            try {
              const r = await client.upload(rest[next++]!, { resume: false, transport, concurrency, ...chunkSize });
              ids.push(r.fileId);
              retries += r.retries;
              size += r.size;
            } catch (err) {
              failures.push(String((err as Error).message));
            }
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      console.log(JSON.stringify({ fileIds: ids, size, retries, failed: failures.length, failures, seconds }));
    } else if (cmd === 'download') {
      const clock = phaseClock();
      const t = client.download(rest[0]!, rest[1]!, { resume: false, concurrency });
      t.on('progress', (p) => clock.on(p.phase));
      const r = await t;
      console.log(
        JSON.stringify({ sha256: r.sha256, verified: r.verified, size: r.size, retries: r.retries, ...clock.done() }),
      );
    } else throw new Error(`unknown command ${cmd}`);
    return 0;
  } finally {
    client.close();
  }
}
