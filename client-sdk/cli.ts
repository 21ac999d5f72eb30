import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConveyorError, HTTPError } from './errors.ts';
import { ConveyorClient } from './node-client.ts';
import type { Progress, Transfer } from './transfer.ts';
import type { TransportMode } from './uploader.ts';

/**
 * `conveyor upload|download|status|abort|ls` (shared/API.md, "The command line"). Exit codes:
 * 0 done, 1 failed (the error's code and message on stderr), 2 bad usage, 130 interrupted
 * (an interrupted upload or download resumes when the same command runs again).
 */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = new Command('conveyor')
    .description('Chunked, resumable, parallel uploads and downloads through a Conveyor coordinator')
    .option('--server <url>', 'coordinator URL (env CONVEYOR_URL)')
    .option('--api-key <key>', 'API key (env CONVEYOR_API_KEY)')
    .option('--state-dir <dir>', 'resume state directory (env CONVEYOR_STATE_DIR; default ~/.conveyor/state)')
    .option('--ca <file>', 'PEM CA certificate(s) to trust for the server and the store (env CONVEYOR_CA_FILE)')
    .option('--hash-workers <n>', 'threads reading and hashing chunks, 0: none (default: one per core)', parseCount)
    .showHelpAfterError()
    .exitOverride();

  const client = (): ConveyorClient => {
    const o = program.opts<{
      server?: string;
      apiKey?: string;
      stateDir?: string;
      ca?: string;
      hashWorkers?: number;
    }>();
    const baseUrl = o.server ?? process.env.CONVEYOR_URL;
    const apiKey = o.apiKey ?? process.env.CONVEYOR_API_KEY;
    if (!baseUrl) throw new ConveyorError('usage', 'No server: pass --server or set CONVEYOR_URL');
    if (!apiKey) throw new ConveyorError('usage', 'No API key: pass --api-key or set CONVEYOR_API_KEY');
    const caFile = o.ca ?? process.env.CONVEYOR_CA_FILE;
    return new ConveyorClient({
      baseUrl,
      apiKey,
      ...(o.stateDir ? { stateDir: o.stateDir } : {}),
      ...(caFile ? { ca: readCa(caFile) } : {}),
      ...(o.hashWorkers !== undefined ? { hashWorkers: o.hashWorkers } : {}),
    });
  };

  program
    .command('upload <path>')
    .description('upload a file (resumes an interrupted upload of the same file)')
    .option('--chunk-size <size>', 'chunk size, e.g. 8MiB (default: 8 MiB, more for huge files)', parseSize)
    .option('--concurrency <n>', 'initial parallel chunks (adapts between 1 and max(16, n))', parsePositive)
    .option(
      '--max-concurrency <n>',
      'most parallel chunks the pool may grow to (default max(16, --concurrency))',
      parsePositive,
    )
    .addOption(
      new Option('--transport <mode>', 'how chunks travel').choices(['direct', 'relay', 'auto']).default('direct'),
    )
    .option('--no-resume', 'start a new upload even if an earlier one of this file was interrupted')
    .option('--json', 'print one JSON object at the end')
    .action(
      async (
        file: string,
        o: {
          chunkSize?: number;
          concurrency?: number;
          maxConcurrency?: number;
          transport: TransportMode;
          resume: boolean;
          json?: boolean;
        },
      ) => {
        const c = client();
        try {
          const concurrency = concurrencyOption(o.concurrency, o.maxConcurrency);
          const t = c.upload(file, {
            transport: o.transport,
            resume: o.resume,
            ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
            ...(concurrency !== undefined ? { concurrency } : {}),
          });
          const r = await withProgress(t, `upload ${file}`, o.json);
          const out = {
            uploadId: r.uploadId,
            fileId: r.fileId,
            size: r.size,
            sha256: r.sha256,
            etag: r.etag,
            seconds: r.seconds,
            mbPerSecond: round(r.size / 1e6 / Math.max(r.seconds, 1e-3)),
            chunksTotal: r.chunksTotal,
            chunksSent: r.chunksSent,
            chunksSkipped: r.chunksSkipped,
            retries: r.retries,
            resumed: r.resumed,
            transport: r.transport,
            concurrency: { final: r.concurrency.current, min: r.concurrency.min, max: r.concurrency.max },
          };
          if (o.json) process.stdout.write(`${JSON.stringify(out)}\n`);
          else {
            process.stdout.write(
              `uploaded ${file}: fileId ${r.fileId}, ${fmtBytes(r.size)} in ${r.seconds.toFixed(1)} s (${out.mbPerSecond} MB/s), ` +
                `${r.chunksSent} chunks sent${r.resumed ? `, ${r.chunksSkipped} already there (resumed)` : ''}, ${r.retries} retries\nsha256 ${r.sha256}\n`,
            );
          }
        } finally {
          c.close();
        }
      },
    );

  program
    .command('download <fileId> <out>')
    .description('download a file (resumes an interrupted download to the same path)')
    .option('--concurrency <n>', 'initial parallel chunks (adapts between 1 and max(16, n))', parsePositive)
    .option(
      '--max-concurrency <n>',
      'most parallel chunks the pool may grow to (default max(16, --concurrency))',
      parsePositive,
    )
    .option('--no-resume', 'fetch every chunk again')
    .option('--json', 'print one JSON object at the end')
    .action(
      async (
        fileId: string,
        out: string,
        o: { concurrency?: number; maxConcurrency?: number; resume: boolean; json?: boolean },
      ) => {
        const c = client();
        try {
          const concurrency = concurrencyOption(o.concurrency, o.maxConcurrency);
          const t = c.download(fileId, out === '-' ? process.stdout : out, {
            resume: o.resume,
            ...(concurrency !== undefined ? { concurrency } : {}),
          });
          const r = await withProgress(t, `download ${fileId}`, o.json || out === '-');
          const summary = {
            fileId: r.fileId,
            fileName: r.fileName,
            out,
            size: r.size,
            sha256: r.sha256,
            verified: r.verified,
            seconds: r.seconds,
            mbPerSecond: round(r.size / 1e6 / Math.max(r.seconds, 1e-3)),
            chunksTotal: r.chunksTotal,
            chunksFetched: r.chunksFetched,
            chunksSkipped: r.chunksSkipped,
            retries: r.retries,
            resumed: r.resumed,
          };
          const stream = out === '-' ? process.stderr : process.stdout;
          if (o.json) stream.write(`${JSON.stringify(summary)}\n`);
          else {
            stream.write(
              `downloaded ${fileId} to ${out}: ${fmtBytes(r.size)} in ${r.seconds.toFixed(1)} s (${summary.mbPerSecond} MB/s), ` +
                `sha256 ${r.sha256}${r.verified ? ' (verified)' : ''}\n`,
            );
          }
        } finally {
          c.close();
        }
      },
    );

  program
    .command('status <uploadId>')
    .description("an upload's state and missing chunks (JSON)")
    .action(async (id: string) => {
      process.stdout.write(`${JSON.stringify(await client().status(id), null, 2)}\n`);
    });

  program
    .command('abort <uploadId>')
    .description('abort an upload; its chunks are discarded')
    .action(async (id: string) => {
      await client().abortUpload(id);
      process.stdout.write(`aborted ${id}\n`);
    });

  program
    .command('ls')
    .description('your uploads, newest first')
    .option('--status <status>', 'only uploads in this state (e.g. IN_PROGRESS)')
    .option('--limit <n>', 'at most this many (1-100)', parsePositive, 20)
    .option('--json', 'print the JSON answer')
    .action(async (o: { status?: string; limit: number; json?: boolean }) => {
      const page = await client().list({ limit: o.limit, ...(o.status ? { status: o.status as never } : {}) });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(page)}\n`);
        return;
      }
      for (const u of page.uploads) {
        process.stdout.write(
          `${u.uploadId}  ${u.status.padEnd(11)} ${fmtBytes(u.fileSize).padStart(10)}  ${u.createdAt}  ${u.fileName}\n`,
        );
      }
      if (page.nextCursor) process.stdout.write(`(more: --cursor ${page.nextCursor})\n`);
    });

  try {
    await program.parseAsync(argv);
  } catch (err) {
    code = report(err);
  }
  return code;
}

/** Progress bar on a terminal (stderr), Ctrl-C aborts cleanly (state kept for the rerun). */
async function withProgress<T>(t: Transfer<T>, label: string, quiet?: boolean): Promise<T> {
  const onSignal = () => t.abort(new ConveyorError('interrupted', 'Interrupted; run the same command again to resume'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar =
    process.stderr.isTTY && !quiet
      ? new cliProgress.SingleBar(
          {
            stream: process.stderr,
            format: `${label} [{bar}] {percentage}% | {done}/{total} | {rate}/s | ETA {eta_s}s | {chunks} chunks | x{conc}{state}`,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  let started = false;
  const update = (p: Progress) => {
    if (!bar) return;
    const payload = {
      done: fmtBytes(p.bytesDone),
      total: fmtBytes(p.bytesTotal),
      rate: fmtBytes(p.rate),
      chunks: `${p.chunksDone}/${p.chunksTotal}`,
      conc: p.concurrency.current,
      state: p.paused ? ' paused' : p.phase === 'transferring' ? '' : ` ${p.phase}`,
      eta_s: p.etaSeconds === undefined ? '?' : Math.round(p.etaSeconds),
    };
    if (!started) {
      bar.start(p.bytesTotal, p.bytesDone, payload);
      started = true;
    } else bar.update(p.bytesDone, payload);
  };
  t.on('progress', update);
  try {
    return await t;
  } finally {
    if (started) bar?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function report(err: unknown): number {
  const e = err as { code?: string; exitCode?: number; message?: string };
  if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
    // --help and --version end "successfully"; usage errors were printed by commander.
    return e.exitCode === 0 ? 0 : 2;
  }
  if (err instanceof ConveyorError) {
    const cause = err.cause instanceof ConveyorError ? err.cause : undefined;
    const shown = err.code === 'aborted' && cause ? cause : err;
    const extra = err instanceof HTTPError && err.details.requestId ? ` (request ${err.details.requestId})` : '';
    process.stderr.write(`conveyor: ${shown.code}: ${shown.message}${extra}\n`);
    if (shown.code === 'usage') return 2;
    return shown.code === 'interrupted' ? 130 : 1;
  }
  process.stderr.write(`conveyor: error: ${e.message ?? String(err)}\n`);
  return 1;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
};

/** "8MiB", "5MB", "8388608". */
export function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new InvalidArgumentError(`not a size: ${value} (e.g. 8MiB, 16MB, 8388608)`);
  return Math.round(Number(m[1]) * unit);
}

/** `--concurrency` and `--max-concurrency` as the SDK's option (a number keeps the default ceiling of max(16, n)). */
function concurrencyOption(initial?: number, max?: number): number | { initial: number; max: number } | undefined {
  if (max === undefined) return initial;
  return { initial: Math.min(initial ?? 4, max), max };
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`must be a whole number ≥ 0, got ${value}`);
  return n;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`must be a whole number ≥ 1, got ${value}`);
  return n;
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

const round = (n: number) => Math.round(n * 10) / 10;

function readCa(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConveyorError('usage', `Cannot read the CA file ${file}: ${(err as Error).message}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConveyorError('usage', `The CA file ${file} holds no PEM certificate`);
  }
  return pem;
}
