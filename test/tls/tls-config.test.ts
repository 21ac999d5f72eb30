import type { AddressInfo } from 'node:net';
import test from 'ava';
import { ConfigError, loadConfig } from '../../server/config.ts';
import { createCoordinatorServer, isLoopback } from '../../server/http-server.ts';
import { createLogger } from '../../server/logger.ts';
import { checkValidity, loadTlsMaterial } from '../../server/tls.ts';
import { makeTestPki, type TestPki } from '../helpers/tls.ts';

/** The TLS settings and the pure pieces behind them, in process. */

let pki: TestPki;
test.before(async () => {
  pki = await makeTestPki();
});
test.after.always(() => pki?.cleanup());

test('TLS settings: both files or neither, the CA only with them, PUBLIC_URL defaults to https', (t) => {
  const plain = loadConfig({ PORT: '8443' });
  t.is(plain.publicUrl, 'http://127.0.0.1:8443');
  t.false(plain.trustProxy);
  t.is(plain.hstsMaxAgeSeconds, 31_536_000);
  t.true(plain.s3TlsVerify);

  const tls = loadConfig({ PORT: '8443', TLS_CERT_FILE: '/c.pem', TLS_KEY_FILE: '/k.pem' });
  t.is(tls.publicUrl, 'https://127.0.0.1:8443');
  t.is(
    loadConfig({ TLS_CERT_FILE: '/c', TLS_KEY_FILE: '/k', PUBLIC_URL: 'https://up.example.com/' }).publicUrl,
    'https://up.example.com',
  );

  const noKey = t.throws(() => loadConfig({ TLS_CERT_FILE: '/c.pem' }), { instanceOf: ConfigError });
  t.is(noKey.message, 'Invalid configuration: TLS_KEY_FILE="": is required when TLS_CERT_FILE is set');
  const noCert = t.throws(() => loadConfig({ TLS_KEY_FILE: '/k.pem' }), { instanceOf: ConfigError });
  t.is(noCert.message, 'Invalid configuration: TLS_CERT_FILE="": is required when TLS_KEY_FILE is set');
  t.throws(() => loadConfig({ TLS_CA_FILE: '/ca.pem' }), {
    message: /^Invalid configuration: TLS_CA_FILE="\/ca.pem": needs TLS_CERT_FILE/,
  });
  t.throws(() => loadConfig({ TRUST_PROXY: 'sometimes' }), {
    message: 'Invalid configuration: TRUST_PROXY="sometimes": expected true or false',
  });
  t.throws(() => loadConfig({ S3_TLS_VERIFY: 'no-thanks' }), { message: /^Invalid configuration: S3_TLS_VERIFY=/ });
  t.throws(() => loadConfig({ HSTS_MAX_AGE_SECONDS: '-5' }), {
    message: /^Invalid configuration: HSTS_MAX_AGE_SECONDS="-5"/,
  });
});

test('loadTlsMaterial accepts a matching, current pair and reports its fingerprint', (t) => {
  const m = loadTlsMaterial({ certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.ca });
  t.is(m.fingerprint256, pki.server.fingerprint256);
  t.truthy(m.ca);
  t.regex(m.subject, /CN=localhost/);
  t.throws(() => loadTlsMaterial({ certFile: pki.server.cert, keyFile: pki.server2.key }), {
    instanceOf: ConfigError,
    message: /TLS_KEY_FILE=.*the key does not match the certificate/,
  });
});

test('checkValidity: the certificate period is inclusive at both ends, and nothing outside it passes', (t) => {
  const cert = { validFrom: 'Jan  1 00:00:00 2020 GMT', validTo: 'Jan  2 00:00:00 2020 GMT' };
  const from = Date.UTC(2020, 0, 1);
  const to = Date.UTC(2020, 0, 2);
  for (const now of [from, from + 1, (from + to) / 2, to]) t.notThrows(() => checkValidity(cert, now, 'V', 'f'));
  t.throws(() => checkValidity(cert, to + 1, 'TLS_CERT_FILE', '/x.pem'), {
    message: 'Invalid configuration: TLS_CERT_FILE="/x.pem": the certificate expired on 2020-01-02T00:00:00.000Z',
  });
  t.throws(() => checkValidity(cert, from - 1, 'TLS_CERT_FILE', '/x.pem'), {
    message:
      'Invalid configuration: TLS_CERT_FILE="/x.pem": the certificate is not valid before 2020-01-01T00:00:00.000Z',
  });
});

test('isLoopback', (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) t.true(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1']) t.false(isLoopback(h), h);
});

test('HSTS over plain HTTP only when TRUST_PROXY is on and the proxy says https', async (t) => {
  const logger = createLogger('silent');
  const get = async (trustProxy: boolean, headers: Record<string, string>) => {
    const s = createCoordinatorServer({
      handler: (_req, res) => res.end('ok'),
      hstsMaxAgeSeconds: 600,
      trustProxy,
      logger,
    });
    const { port } = (await s.listen(0, '127.0.0.1')) as AddressInfo;
    try {
      return (await fetch(`http://127.0.0.1:${port}/`, { headers })).headers.get('strict-transport-security');
    } finally {
      await s.close(1000);
    }
  };
  t.is(await get(false, {}), null);
  t.is(await get(false, { 'x-forwarded-proto': 'https' }), null, 'a client cannot forge it');
  t.is(await get(true, { 'x-forwarded-proto': 'https' }), 'max-age=600');
  t.is(await get(true, { 'x-forwarded-proto': 'http' }), null);
  t.is(
    await get(true, { 'x-forwarded-proto': 'https, http' }),
    'max-age=600',
    'the first (client-facing) proxy decides',
  );
});
