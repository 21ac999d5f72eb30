import test from 'ava';
import { ConfigError, loadConfig } from '../../server/config.ts';

test('defaults: embedded mode on loopback port 8080 with the disk store', (t) => {
  const c = loadConfig({});
  t.like(c, {
    port: 8080,
    host: '127.0.0.1',
    storeKind: 'disk',
    databaseUrl: undefined,
    presignTtlSeconds: 900,
    defaultChunkSize: 8 * 1024 * 1024,
    maxRetries: 5,
    publicUrl: 'http://127.0.0.1:8080',
  });
  t.true(c.dataDir.endsWith('.data'));
});

test('S3 settings select the S3 store; S3_ENDPOINT without a bucket is refused', (t) => {
  const c = loadConfig({ S3_BUCKET: 'my-bucket', S3_ENDPOINT: 'http://127.0.0.1:7480', S3_FORCE_PATH_STYLE: 'true' });
  t.like(c, { storeKind: 's3', s3Bucket: 'my-bucket', s3ForcePathStyle: true });
  t.throws(() => loadConfig({ S3_ENDPOINT: 'http://127.0.0.1:7480' }), { message: /S3_BUCKET/ });
});

test('API_KEYS parses principal:key pairs', (t) => {
  const c = loadConfig({ API_KEYS: 'alice:aaaaaaaaaaaaaaaa1,bob:bbbbbbbbbbbbbbbb2' });
  t.deepEqual(c.apiKeys, [
    { principal: 'alice', key: 'aaaaaaaaaaaaaaaa1' },
    { principal: 'bob', key: 'bbbbbbbbbbbbbbbb2' },
  ]);
});

const bad: Array<[string, string, RegExp]> = [
  ['PORT', 'abc', /^Invalid configuration: PORT="abc": /],
  ['PORT', '70000', /PORT="70000": must be at most 65535/],
  ['MAX_INFLIGHT_GLOBAL', '-1', /MAX_INFLIGHT_GLOBAL="-1": must be at least 1/],
  ['MAX_FILE_SIZE', '1.5', /MAX_FILE_SIZE="1.5"/],
  ['DEFAULT_CHUNK_SIZE', '1024', /DEFAULT_CHUNK_SIZE="1024": must be at least 5242880/],
  ['PRESIGN_TTL_SECONDS', '604801', /PRESIGN_TTL_SECONDS/],
  ['S3_FORCE_PATH_STYLE', 'maybe', /S3_FORCE_PATH_STYLE="maybe": expected true or false/],
  ['LOG_LEVEL', 'loud', /LOG_LEVEL="loud"/],
  ['WHOLE_FILE_VERIFY', 'never', /WHOLE_FILE_VERIFY="never".*read-back or parts/],
  ['S3_ENDPOINT', 'not a url', /S3_ENDPOINT="not a url"/],
  ['REDIS_URL', 'http://x', /REDIS_URL/],
];
for (const [name, value, message] of bad) {
  test(`${name}=${value} is refused with a one-line message naming it`, (t) => {
    const err = t.throws(() => loadConfig({ [name]: value }), { instanceOf: ConfigError, message });
    t.is(err?.variable, name);
    t.false(err?.message.includes('\n'));
  });
}

test('secrets in a bad value are masked in the message', (t) => {
  const err = t.throws(() => loadConfig({ API_KEYS: 'alice:supersecretvalue123,bob:x' }));
  t.false(err?.message.includes('supersecretvalue123'));
  t.regex(err?.message ?? '', /API_KEYS="alice:\*\*\*,bob:\*\*\*"/);
  const db = t.throws(() => loadConfig({ DATABASE_URL: 'mysql://user:hunter2@db/x' }));
  t.false(db?.message.includes('hunter2'));
});

test('MIN_WORKERS above MAX_WORKERS is refused', (t) => {
  t.throws(() => loadConfig({ MIN_WORKERS: '8', MAX_WORKERS: '4' }), { message: /MIN_WORKERS="8"/ });
});
