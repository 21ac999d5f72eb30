import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

/**
 * Throwaway certificates made with `openssl` for one test file: nothing here is checked in.
 * EC P-256 keys (fast to generate); server certificates name 127.0.0.1 and localhost.
 */
export interface TestPki {
  dir: string;
  /** The test CA (`ca.pem`) that signed the server and client certificates below. */
  ca: string;
  server: { cert: string; key: string; fingerprint256: string };
  /** A second certificate for the same names, for the reload test. */
  server2: { cert: string; key: string; fingerprint256: string };
  /** RGW's `ssl_certificate`: server certificate and key in one file. */
  rgwPem: string;
  /** A client certificate issued by the CA (mutual TLS). */
  client: { cert: string; key: string };
  /** A key that belongs to no certificate here. */
  strayKey: string;
  /** Valid from 2020-01-01 to 2020-01-02, issued by the CA. */
  expired: { cert: string; key: string };
  /** A CA and a server certificate from it that no test trusts. */
  otherCa: string;
  untrusted: { cert: string; key: string };
  cleanup(): Promise<void>;
}

const openssl = (cwd: string, ...args: string[]) => execFileSync('openssl', args, { cwd, stdio: 'pipe' });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export async function makeTestPki(): Promise<TestPki> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-pki-'));
  const at = (f: string) => path.join(dir, f);
  await fs.writeFile(at('san.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  await fs.writeFile(at('client.ext'), 'extendedKeyUsage = clientAuth\n');
  const makeCa = (name: string, cn: string) =>
    openssl(
      dir,
      'req',
      '-x509',
      ...EC,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.pem`,
      '-subj',
      `/CN=${cn}`,
      '-days',
      '2',
    );
  const issue = (name: string, ca: string, ext: string, cn = 'localhost') => {
    openssl(dir, 'req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    openssl(
      dir,
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.pem`,
      '-CAkey',
      `${ca}.key`,
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      '-extfile',
      ext,
    );
  };
  makeCa('ca', 'Conveyor test CA');
  issue('server', 'ca', 'san.ext');
  issue('server2', 'ca', 'san.ext');
  issue('client', 'ca', 'client.ext', 'conveyor-test-client');
  makeCa('other-ca', 'Untrusted test CA');
  issue('untrusted', 'other-ca', 'san.ext');
  openssl(dir, 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'stray.key');

  // `openssl x509 -req` cannot back-date (no negative -days); `openssl ca` takes explicit dates.
  openssl(dir, 'req', ...EC, '-keyout', 'expired.key', '-out', 'expired.csr', '-subj', '/CN=localhost');
  await fs.mkdir(at('ca-db'));
  await fs.writeFile(at('ca-db/index.txt'), '');
  await fs.writeFile(at('ca-db/serial'), '1000\n');
  await fs.writeFile(
    at('ca.cnf'),
    '[ca]\ndefault_ca = d\n[d]\ndatabase = ca-db/index.txt\nnew_certs_dir = ca-db\nserial = ca-db/serial\n' +
      'default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n',
  );
  openssl(
    dir,
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-cert',
    'ca.pem',
    '-keyfile',
    'ca.key',
    '-in',
    'expired.csr',
    '-out',
    'expired.pem',
    '-notext',
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
  );
  await fs.writeFile(
    at('rgw.pem'),
    Buffer.concat([await fs.readFile(at('server.pem')), await fs.readFile(at('server.key'))]),
  );
  const fingerprint = async (f: string) =>
    new (await import('node:crypto')).X509Certificate(await fs.readFile(f)).fingerprint256;
  return {
    dir,
    ca: at('ca.pem'),
    server: { cert: at('server.pem'), key: at('server.key'), fingerprint256: await fingerprint(at('server.pem')) },
    server2: { cert: at('server2.pem'), key: at('server2.key'), fingerprint256: await fingerprint(at('server2.pem')) },
    rgwPem: at('rgw.pem'),
    client: { cert: at('client.pem'), key: at('client.key') },
    strayKey: at('stray.key'),
    expired: { cert: at('expired.pem'), key: at('expired.key') },
    otherCa: at('other-ca.pem'),
    untrusted: { cert: at('untrusted.pem'), key: at('untrusted.key') },
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

export interface Coordinator {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** The real entry point, `node --import tsx server/main.ts`, as a child process with `env`. */
export function spawnCoordinator(env: NodeJS.ProcessEnv): Coordinator {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return {
    child,
    output: () => out,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Waits until the coordinator's log has a line matching `pattern`; fails if it exits first. */
export async function waitForLog(c: Coordinator, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!pattern.test(c.output())) {
    if (c.child.exitCode !== null) throw new Error(`coordinator exited (${c.child.exitCode}):\n${c.output()}`);
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms:\n${c.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Reply {
  status: number;
  /** '2.0' over HTTP/2, '1.1' over HTTP/1.1. */
  httpVersion: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
}

interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string | object;
}

function encode(req: Req): { headers: Record<string, string>; body?: Buffer } {
  const headers = { ...req.headers };
  if (req.body === undefined) return { headers };
  const body =
    Buffer.isBuffer(req.body) || typeof req.body === 'string'
      ? Buffer.from(req.body)
      : Buffer.from(JSON.stringify(req.body));
  if (!Buffer.isBuffer(req.body) && typeof req.body !== 'string') headers['content-type'] = 'application/json';
  headers['content-length'] = String(body.length);
  return { headers, body };
}

const reply = (status: number, httpVersion: string, headers: Reply['headers'], body: Buffer): Reply => ({
  status,
  httpVersion,
  headers,
  body,
  json: <T>() => JSON.parse(body.toString('utf8')) as T,
});

/** One request on an HTTP/2 session. */
export function h2request(session: http2.ClientHttp2Session, req: Req): Promise<Reply> {
  const { headers, body } = encode(req);
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': req.method ?? 'GET', ':path': req.path, ...headers });
    const chunks: Buffer[] = [];
    let responseHeaders: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => {
      responseHeaders = h;
    });
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () =>
      resolve(reply(Number(responseHeaders[':status']), '2.0', responseHeaders, Buffer.concat(chunks))),
    );
    stream.on('error', reject);
    stream.end(body);
  });
}

/** One HTTP/1.1 request over TLS (`url` absolute), trusting `tls.ca` when given. */
export function httpsRequest(url: string, req: Omit<Req, 'path'>, tls: https.RequestOptions = {}): Promise<Reply> {
  const { headers, body } = encode({ ...req, path: '' });
  return new Promise((resolve, reject) => {
    const r = https.request(url, { method: req.method ?? 'GET', headers, agent: false, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve(reply(res.statusCode ?? 0, res.httpVersion, res.headers, Buffer.concat(chunks))));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** Connects an HTTP/2 session; rejects on a failed handshake. */
export function h2connect(url: string, options: http2.SecureClientSessionOptions): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, options);
    session.once('error', reject);
    session.once('connect', () => {
      session.off('error', reject);
      session.on('error', () => {});
      resolve(session);
    });
  });
}

/**
 * The environment of a coordinator child: this process's, minus every Conveyor, S3 and AWS
 * setting (so nothing leaks in from the developer's shell), plus `extra`.
 */
export function coordinatorEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (
      !/^(DATABASE_URL|S3_|AWS_|API_KEYS|PORT|HOST|DATA_DIR|PUBLIC_URL|LOG_LEVEL|TLS_|TRUST_PROXY|HSTS_|NODE_EXTRA_CA_CERTS)/.test(
        k,
      )
    ) {
      env[k] = v;
    }
  }
  return { ...env, ...extra };
}

/** Polls `probe` until it returns true. */
export async function eventually(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await probe().catch(() => false))) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
