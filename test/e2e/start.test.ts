import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { freePort } from '../../server/embedded.ts';

/** The environment of a fresh machine: nothing of ours configured (no database, no S3). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(DATABASE_URL|S3_|AWS_|API_KEYS|PORT|HOST|DATA_DIR|PUBLIC_URL|LOG_LEVEL)/.test(k)) env[k] = v;
  }
  return { ...env, ...extra };
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function start(env: NodeJS.ProcessEnv): Started {
  const child = spawn('npm', ['start', '--silent'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  // 'close', not 'exit': it waits for every process holding our stdout (npm, tsx, the server) to end.
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, output: () => out, exited };
}

function killGroup(s: Started): void {
  try {
    process.kill(-s.child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function waitReady(url: string, timeoutMs: number, s: Started): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const res = await fetch(`${url}/readyz`).catch(() => null);
    if (res?.status === 200) return Date.now() - t0;
    if (s.child.exitCode !== null) throw new Error(`exited early:\n${s.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`not ready within ${timeoutMs} ms:\n${s.output()}`);
}

/**
 * SIGTERM to the whole process group, as a terminal's Ctrl-C or a supervisor does; npm
 * itself then dies of the signal, so graceful shutdown is judged by the server's own log.
 */
async function stop(s: Started): Promise<boolean> {
  process.kill(-s.child.pid!, 'SIGTERM');
  await s.exited;
  return /"msg":"stopped"/.test(s.output());
}

test('npm start with no environment runs on embedded defaults, prints a dev key, and restarts on the same data', async (t) => {
  t.timeout(240_000);
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-start-'));
  t.teardown(() => fs.rm(dataDir, { recursive: true, force: true }));
  await fs.chmod(dataDir, 0o755); // mkdtemp makes it 0700; as root the cluster runs as `postgres`
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = cleanEnv({ DATA_DIR: dataDir, PORT: String(port) });

  const first = start(env);
  t.teardown(() => killGroup(first));
  const ms1 = await waitReady(url, 60_000, first);
  t.log(`first start ready in ${ms1} ms`);
  const key = /Development API key: (\S+)/.exec(first.output())?.[1];
  t.truthy(key, first.output());
  t.true(first.output().includes(`running at ${url}`));
  const ready = (await (await fetch(`${url}/readyz`)).json()) as { checks: { store: string } };
  t.is(ready.checks.store, 'disk');
  t.is((await fetch(`${url}/v1/uploads`, { headers: { authorization: `Bearer ${key}` } })).status, 200);

  // The admin command attaches to the running coordinator's embedded database.
  const created = spawnSync('npm', ['run', '--silent', 'admin', '--', 'keys', 'create', 'ops'], {
    env,
    encoding: 'utf8',
  });
  t.is(created.status, 0, created.stderr);
  const opsKey = (JSON.parse(created.stdout) as { key: string }).key;
  t.is((await fetch(`${url}/v1/uploads`, { headers: { authorization: `Bearer ${opsKey}` } })).status, 200);
  t.true(await stop(first), `graceful stop:\n${first.output()}`);
  t.true((await fs.stat(path.join(dataDir, 'postgres', 'PG_VERSION'))).isFile(), 'database under DATA_DIR');

  const second = start(env);
  t.teardown(() => killGroup(second));
  const ms2 = await waitReady(url, 60_000, second);
  t.log(`restart ready in ${ms2} ms`);
  t.is(/Development API key: (\S+)/.exec(second.output())?.[1], key, 'the same key after a restart');
  t.is((await fetch(`${url}/v1/uploads`, { headers: { authorization: `Bearer ${key}` } })).status, 200);

  // A coordinator killed outright leaves its PostgreSQL behind; the next start takes over.
  const serverPid = Number(/"pid":(\d+)[^\n]*conveyor listening/.exec(second.output())?.[1]);
  t.true(serverPid > 0);
  process.kill(serverPid, 'SIGKILL');
  await second.exited;
  const third = start(env);
  t.teardown(() => killGroup(third));
  await waitReady(url, 60_000, third);
  t.is((await fetch(`${url}/v1/uploads`, { headers: { authorization: `Bearer ${opsKey}` } })).status, 200);
  t.true(await stop(third), `graceful stop:\n${third.output()}`);
});

test('a bad configuration value stops start-up with a non-zero exit naming the variable and value', async (t) => {
  t.timeout(60_000);
  for (const [name, value] of [
    ['PORT', 'abc'],
    ['MAX_INFLIGHT_GLOBAL', '-1'],
    ['S3_FORCE_PATH_STYLE', 'maybe'],
  ] as const) {
    const s = start(cleanEnv({ [name]: value, DATA_DIR: path.join(os.tmpdir(), 'conveyor-never-created') }));
    const code = await s.exited;
    t.not(code, 0);
    t.true(s.output().includes(`Invalid configuration: ${name}="${value}"`), s.output());
  }
});
