/**
 * `npm test`: typecheck, lint, then every ava suite, against an embedded PostgreSQL unless
 * DATABASE_URL is set, and against S3 too when S3_BUCKET is set. ava is not a runner CI
 * reads, so this prints the closing `N passed, N failed` line itself, from ava's TAP
 * output (`ok` / `not ok` lines) plus one line each for typecheck and lint.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { startEmbeddedPostgres } from '../server/embedded.ts';

let passed = 0;
let failed = 0;
let skipped = 0;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, onLine?: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', onLine ? 'pipe' : 'inherit', 'inherit'] });
    if (onLine && child.stdout) readline.createInterface({ input: child.stdout }).on('line', onLine);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function step(name: string, cmd: string, args: string[]): Promise<void> {
  const code = await run(cmd, args, process.env);
  if (code === 0) passed++;
  else failed++;
  console.log(`${code === 0 ? 'ok' : 'not ok'} - ${name}`);
}

const bin = (name: string) => path.join('node_modules', '.bin', name);
const only = process.argv.slice(2); // optional ava file patterns, e.g. `npm test -- test/db`

if (only.length === 0) {
  await step('typecheck (tsc --noEmit)', bin('tsc'), ['--noEmit']);
  await step('lint (biome check)', bin('biome'), ['check', '.']);
}

// The AWS SDK's notice that Node 20 support ends in 2027 would repeat once per test process.
const env: NodeJS.ProcessEnv = {
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  ...process.env,
  FORCE_COLOR: '0',
};
let stopDb: (() => Promise<void>) | null = null;
if (!env.DATABASE_URL) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-test-pg-'));
  await fs.chmod(dir, 0o755);
  const embedded = await startEmbeddedPostgres({ dir: path.join(dir, 'cluster'), database: 'conveyor_test' });
  env.DATABASE_URL = embedded.url;
  stopDb = async () => {
    await embedded.stop();
    await fs.rm(dir, { recursive: true, force: true });
  };
  console.log('# database: embedded PostgreSQL (DATABASE_URL not set)');
} else {
  console.log(`# database: ${env.DATABASE_URL.replace(/:\/\/([^:@]*):[^@]*@/, '://$1:***@')}`);
}
console.log(
  `# object stores: disk${env.S3_BUCKET ? ` + s3 (${env.S3_ENDPOINT ?? 'AWS'} bucket ${env.S3_BUCKET})` : ' only (S3_BUCKET not set)'}`,
);

const failures: string[] = [];
const code = await run(bin('ava'), ['--tap', ...only], env, (line) => {
  console.log(line);
  const m = /^(not ok|ok) \d+ - (.*)$/.exec(line);
  if (!m) return;
  if (m[1] === 'not ok') {
    failed++;
    failures.push(m[2]!);
  } else if (/# SKIP/.test(m[2]!)) skipped++;
  else passed++;
});
await stopDb?.();

if (code !== 0 && failures.length === 0) {
  // ava failed without a failing test line (a crash, an uncaught error in a file): count it.
  failed++;
  failures.push(`ava exited with code ${code}`);
}
if (failures.length > 0) console.log(`# failed:\n${failures.map((f) => `#   ${f}`).join('\n')}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
