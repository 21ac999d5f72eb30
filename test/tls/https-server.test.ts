import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import test from 'ava';
import { freePort } from '../../server/embedded.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  type Coordinator,
  coordinatorEnv,
  h2connect,
  h2request,
  httpsRequest,
  makeTestPki,
  spawnCoordinator,
  type TestPki,
  waitForLog,
} from '../helpers/tls.ts';

/**
 * The coordinator's own HTTPS, through the real entry point (`node --import tsx server/main.ts`)
 * on the local-disk store: start-up checks of the TLS files, certificate reload on SIGHUP,
 * client certificates, the plain-HTTP warning. (HTTPS to S3: s3-tls-e2e.test.ts.)
 */

let pki: TestPki;
let tdb: TestDatabase;
const cleanups: Array<() => Promise<unknown>> = [];

test.before(async () => {
  pki = await makeTestPki();
  tdb = await createTestDatabase();
});

test.after.always(async () => {
  for (const fn of cleanups.reverse()) await fn();
  await tdb?.drop();
  await pki?.cleanup();
});

async function start(extra: Record<string, string>): Promise<{ c: Coordinator; port: number }> {
  const port = await freePort();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-https-'));
  const c = spawnCoordinator(
    coordinatorEnv({
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DATABASE_URL: tdb.url,
      LOG_LEVEL: 'debug',
      ...extra,
    }),
  );
  cleanups.push(async () => {
    await c.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  return { c, port };
}

const peerFingerprint = (socket: unknown) => (socket as TLSSocket).getPeerCertificate().fingerprint256;

test('bad TLS files stop start-up with one line naming the variable and the file', async (t) => {
  t.timeout(60_000);
  const missing = path.join(pki.dir, 'nope.pem');
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { TLS_CERT_FILE: missing, TLS_KEY_FILE: pki.server.key },
      /^Invalid configuration: TLS_CERT_FILE=".*nope\.pem": cannot read the file \(ENOENT\)$/m,
    ],
    [
      { TLS_CERT_FILE: pki.server.cert, TLS_KEY_FILE: pki.strayKey },
      /^Invalid configuration: TLS_KEY_FILE=".*stray\.key": the key does not match the certificate in TLS_CERT_FILE/m,
    ],
    [
      { TLS_CERT_FILE: pki.expired.cert, TLS_KEY_FILE: pki.expired.key },
      /^Invalid configuration: TLS_CERT_FILE=".*expired\.pem": the certificate expired on 2020-01-02T00:00:00\.000Z$/m,
    ],
    [
      { TLS_CERT_FILE: pki.server.key, TLS_KEY_FILE: pki.server.key },
      /^Invalid configuration: TLS_CERT_FILE=".*server\.key": not a PEM certificate/m,
    ],
    [
      { TLS_CERT_FILE: pki.server.cert },
      /^Invalid configuration: TLS_KEY_FILE="": is required when TLS_CERT_FILE is set$/m,
    ],
    [
      { TLS_CERT_FILE: pki.server.cert, TLS_KEY_FILE: pki.server.key, TLS_CA_FILE: missing },
      /^Invalid configuration: TLS_CA_FILE=".*nope\.pem": cannot read the file \(ENOENT\)$/m,
    ],
  ];
  await Promise.all(
    cases.map(async ([env, message]) => {
      const { c } = await start(env);
      t.is(await c.exited, 2, c.output());
      t.regex(c.output(), message);
      t.notRegex(c.output(), /listening/);
    }),
  );
});

test('SIGHUP reloads the certificate; an open HTTP/2 session keeps working', async (t) => {
  t.timeout(60_000);
  const certFile = path.join(pki.dir, 'live.pem');
  const keyFile = path.join(pki.dir, 'live.key');
  await fs.copyFile(pki.server.cert, certFile);
  await fs.copyFile(pki.server.key, keyFile);
  const { c, port } = await start({ TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile });
  await waitForLog(c, /conveyor listening/);
  const url = `https://127.0.0.1:${port}`;
  const ca = await fs.readFile(pki.ca);

  const before = await h2connect(url, { ca });
  t.teardown(() => before.close());
  t.is(peerFingerprint(before.socket), pki.server.fingerprint256);
  const r1 = await h2request(before, { path: '/healthz' });
  t.is(r1.status, 200);
  t.is(r1.headers['strict-transport-security'], 'max-age=31536000');

  // A file that is not a certificate: logged, and the coordinator keeps the current one.
  await fs.writeFile(certFile, 'not a certificate');
  c.child.kill('SIGHUP');
  await waitForLog(c, /TLS certificate reload failed; still serving the previous one/);
  t.is(c.child.exitCode, null);

  await fs.copyFile(pki.server2.cert, certFile);
  await fs.copyFile(pki.server2.key, keyFile);
  c.child.kill('SIGHUP');
  await waitForLog(c, /TLS certificate reloaded/);

  const after = await h2connect(url, { ca });
  t.teardown(() => after.close());
  t.is(peerFingerprint(after.socket), pki.server2.fingerprint256, 'new connections get the new certificate');
  t.is((await h2request(after, { path: '/healthz' })).status, 200);
  // The session opened before the reload still carries requests, on its old certificate.
  t.is(peerFingerprint(before.socket), pki.server.fingerprint256);
  t.is((await h2request(before, { path: '/healthz' })).status, 200);
  t.false(before.closed || before.destroyed);
  const h1 = await new Promise<string>((resolve, reject) => {
    import('node:https').then(({ default: https }) =>
      https
        .get(`${url}/healthz`, { ca, agent: false }, (res) => {
          resolve(peerFingerprint(res.socket));
          res.resume();
        })
        .on('error', reject),
    );
  });
  t.is(h1, pki.server2.fingerprint256, 'HTTP/1.1 too');
});

test('with TLS_CA_FILE a client must present a certificate that CA issued', async (t) => {
  t.timeout(60_000);
  const { c, port } = await start({
    TLS_CERT_FILE: pki.server.cert,
    TLS_KEY_FILE: pki.server.key,
    TLS_CA_FILE: pki.ca,
  });
  await waitForLog(c, /with client certificates/);
  const url = `https://127.0.0.1:${port}`;
  const ca = await fs.readFile(pki.ca);
  const cert = await fs.readFile(pki.client.cert);
  const key = await fs.readFile(pki.client.key);

  const ok = await httpsRequest(`${url}/healthz`, {}, { ca, cert, key });
  t.is(ok.status, 200);
  const session = await h2connect(url, { ca, cert, key });
  t.teardown(() => session.close());
  t.is((await h2request(session, { path: '/healthz' })).status, 200);

  // No client certificate, or one from a CA the server does not trust: the handshake fails.
  await t.throwsAsync(httpsRequest(`${url}/healthz`, {}, { ca }));
  const strangerCert = await fs.readFile(pki.untrusted.cert);
  const strangerKey = await fs.readFile(pki.untrusted.key);
  await t.throwsAsync(httpsRequest(`${url}/healthz`, {}, { ca, cert: strangerCert, key: strangerKey }));
  await waitForLog(c, /TLS handshake failed/, 5_000);
  t.is(c.child.exitCode, null);
  t.is((await httpsRequest(`${url}/healthz`, {}, { ca, cert, key })).status, 200);
});

test('plain HTTP on a non-loopback address logs a warning; loopback does not', async (t) => {
  t.timeout(60_000);
  const open = await start({ HOST: '0.0.0.0' });
  await waitForLog(open.c, /conveyor listening/);
  t.regex(open.c.output(), /"level":40[^\n]*serving plain HTTP on a non-loopback address/);
  t.is((await fetch(`http://127.0.0.1:${open.port}/healthz`)).headers.get('strict-transport-security'), null);

  const local = await start({});
  await waitForLog(local.c, /conveyor listening/);
  t.notRegex(local.c.output(), /non-loopback/);
});

test('SIGTERM drains an HTTPS coordinator with open HTTP/2 and HTTP/1.1 connections', async (t) => {
  t.timeout(60_000);
  const { c, port } = await start({ TLS_CERT_FILE: pki.server.cert, TLS_KEY_FILE: pki.server.key });
  await waitForLog(c, /conveyor listening/);
  const ca = await fs.readFile(pki.ca);
  const session = await h2connect(`https://127.0.0.1:${port}`, { ca });
  t.is((await h2request(session, { path: '/healthz' })).status, 200);
  const keepAlive = new (await import('node:https')).Agent({ keepAlive: true, ca });
  t.teardown(() => keepAlive.destroy());
  t.is((await httpsRequest(`https://127.0.0.1:${port}/healthz`, {}, { agent: keepAlive })).status, 200);
  const t0 = Date.now();
  t.is(await c.stop(), 0, c.output());
  t.regex(c.output(), /"msg":"stopped"/);
  t.notRegex(c.output(), /shutdown timeout reached/);
  t.true(Date.now() - t0 < 10_000);
});

test('errors over HTTP/2 carry no connection-specific header (RFC 9113 §8.2.2)', async (t) => {
  t.timeout(60_000);
  const key = 'h2-headers-key-0123456789';
  const { c, port } = await start({
    TLS_CERT_FILE: pki.server.cert,
    TLS_KEY_FILE: pki.server.key,
    API_KEYS: `alice:${key}`,
  });
  await waitForLog(c, /conveyor listening/);
  const session = await h2connect(`https://127.0.0.1:${port}`, { ca: await fs.readFile(pki.ca) });
  t.teardown(() => session.close());
  // A relay PUT refused before its body is read: over HTTP/1.1 this closes the connection.
  const refused = await h2request(session, {
    method: 'PUT',
    path: '/v1/uploads/00000000-0000-4000-8000-000000000000/chunks/0',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
    body: Buffer.alloc(1024),
  });
  t.is(refused.status, 404);
  t.is(refused.headers.connection, undefined);
  t.is((await h2request(session, { path: '/healthz' })).status, 200, 'the session is still usable');
  t.notRegex(c.output(), /UnsupportedWarning|connection header is not valid/i);
});
