import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import test from 'ava';
import fc from 'fast-check';
import { ERRORS } from '../../server/http/errors.ts';
import { initUpload, sendChunks, uploadFile } from '../helpers/api-client.ts';
import { s3Configured } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { type InProcessCoordinator, startInProcessCoordinator } from '../helpers/in-process-coordinator.ts';

/**
 * Property-based hostile input (fast-check): hundreds of generated requests per run, each
 * malformed or adversarial in at least one way (authorization, ids, JSON, sizes, types, methods,
 * headers, body sizes), across every endpoint, against the coordinator as `server/main.ts`
 * serves it (real PostgreSQL, the real S3 gateway when configured). Every answer must be a
 * catalogued 4xx in the API's error shape; the database must not change; the server must stay
 * up with flat memory. Then malformed HTTP at the socket level, which never reaches Koa.
 */
const MiB = 1024 * 1024;
const RUNS = Number(process.env.HOSTILE_RUNS ?? 600);
const SEED = Number(process.env.HOSTILE_SEED ?? Date.now() % 2 ** 31);

let tdb: TestDatabase;
let srv: InProcessCoordinator;
/** An open upload of alice (3 chunks: 0 uploaded and reported, 1 in S3 but unreported, 2 untouched), one of bob, alice's completed file. */
const ids = { open: '', bobs: '', file: '' };
const port = () => Number(new URL(srv.url).port);

test.before(async () => {
  tdb = await createTestDatabase();
  srv = await startInProcessCoordinator({
    databaseUrl: tdb.url,
    store: s3Configured() ? 's3' : 'disk',
    // The rate bucket would turn most of the run into 429s; limits have their own tests.
    env: { RATE_LIMIT_PER_SECOND: '100000', RATE_LIMIT_BURST: '100000', MAX_FILE_SIZE: String(1024 * MiB) },
  });
  const file = randomBytes(10 * MiB + 5);
  const open = await initUpload(srv.url, srv.keys.alice, file);
  await sendChunks(srv.url, srv.keys.alice, open, file, [0]);
  await sendChunks(srv.url, srv.keys.alice, open, file, [1], { report: false });
  ids.open = open.uploadId;
  ids.bobs = (await initUpload(srv.url, srv.keys.bob, file)).uploadId;
  ids.file = (await uploadFile(srv.url, srv.keys.alice, randomBytes(1000))).fileId;
});

test.after.always(async () => {
  if (srv) {
    for (const id of [ids.open, ids.bobs])
      await srv.app.service.abort(id === ids.bobs ? 'bob' : 'alice', id).catch(() => {});
    if (ids.file) await srv.store.deleteObject(`uploads/${ids.file}`).catch(() => {});
    await srv.close();
  }
  await tdb?.drop();
});

/** Everything a hostile request could change: uploads, chunks, idempotency keys, API keys. */
async function snapshot(): Promise<string> {
  const q = async (text: string) => JSON.stringify((await tdb.pool.query(text)).rows);
  return [
    await q('SELECT id, principal, status, s3_upload_id, etag, file_size, total_chunks FROM uploads ORDER BY id'),
    await q('SELECT upload_id, chunk_index, status, etag, size, md5, sha256, retry_count FROM chunks ORDER BY 1, 2'),
    await q('SELECT principal, key, response_status FROM idempotency_keys ORDER BY 1, 2'),
    await q('SELECT principal, key_hash, revoked_at FROM api_keys ORDER BY id'),
  ].join('\n');
}

interface HostileRequest {
  what: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  /** Range requests on a real file may legitimately succeed (RFC 9110 ignores a Range it cannot parse). */
  maySucceed?: boolean;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function send(r: HostileRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: port(), method: r.method, path: r.path, headers: r.headers, agent: false },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }),
        );
        res.on('error', reject);
      },
    );
    // The server may answer and close before a large body is all sent: that is its right.
    req.on('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
    );
    if (r.body !== undefined) req.end(r.body);
    else req.end();
  });
}

// ---- generators ---------------------------------------------------------------------------

const UUID = '7f1c7f1c-0000-4000-8000-000000000000';
const badIds = fc.oneof(
  fc.constantFrom(
    '..',
    '../..',
    '..%2F..%2Fetc%2Fpasswd',
    '%2e%2e%2f%2e%2e',
    '%00',
    'null',
    'undefined',
    '0',
    '-1',
    "'%20OR%201=1%20--",
    '%27%3B%20DROP%20TABLE%20uploads%3B--',
    encodeURIComponent('ü🙂ŉ'),
    `${UUID.slice(0, -1)}g`,
    UUID.toUpperCase().replace(/-/g, ''),
    `{${UUID}}`,
    'a'.repeat(4000),
    UUID, // well-formed, nobody's
  ),
  fc.string({ minLength: 1, maxLength: 80 }).map(encodeURIComponent),
);
/** Ids that reach a real row but must not act on it: bob's upload with alice's key. */
const foreignId = fc.constant('BOBS');

const badAuth = fc.constantFrom(
  undefined,
  '',
  'Bearer',
  'Bearer ',
  'bearer',
  'Basic YWxpY2U6c2VjcmV0',
  'Bearer null',
  `Bearer ${'k'.repeat(8000)}`,
  'Bearer \u00ff\u00fe',
  'Token abc',
  'Bearer a b c',
  'BearerBearer x',
);

const routes = [
  ['POST', '/v1/uploads'],
  ['GET', '/v1/uploads'],
  ['GET', '/v1/uploads/ID'],
  ['POST', '/v1/uploads/ID/chunks/presign'],
  ['PATCH', '/v1/uploads/ID/chunks/0'],
  ['PUT', '/v1/uploads/ID/chunks/2'],
  ['POST', '/v1/uploads/ID/complete'],
  ['DELETE', '/v1/uploads/ID'],
  ['GET', '/v1/files/FILE'],
  ['GET', '/v1/files/FILE/content'],
] as const;

const json = (v: unknown) => JSON.stringify(v);
const evil = fc.constantFrom<unknown>(
  null,
  true,
  -1,
  0.5,
  -0,
  1e308,
  2 ** 63,
  Number.MAX_SAFE_INTEGER + 2,
  '',
  '1',
  'x'.repeat(5000),
  '\u0000',
  '\ud800',
  [],
  {},
  { $gt: 0 },
  [1, 2, 3],
  { __proto__: { polluted: true } },
);
/** Bodies that are not JSON at all, or JSON no schema accepts. */
const rawBodies = fc.oneof(
  fc.constantFrom(
    '{',
    '{"a":1,}',
    '[',
    'nul',
    '{"fileName":"a","fileSize":1',
    "{'single':'quotes'}",
    '\ufeff{}x',
    '{"a":NaN}',
    '{"a":Infinity}',
    '{"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}',
    `${'['.repeat(50_000)}${']'.repeat(50_000)}`,
    `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`,
    `{"pad":"${'x'.repeat(MiB + 100)}"}`,
    `[${'1,'.repeat(200_000)}1]`,
  ),
  fc.string({ maxLength: 200 }).filter((s) => {
    try {
      JSON.parse(s);
      return false;
    } catch {
      return true;
    }
  }),
);

/** One field of a valid body replaced by something its schema refuses: never a valid request. */
const badInit = fc.oneof(
  fc.record({
    fileName: fc.constantFrom<unknown>('', 'a'.repeat(1025), 'a\u0007b', 42, null, ['a'], {}),
    fileSize: fc.constant(1000),
  }),
  fc.record({
    fileName: fc.constant('a.bin'),
    fileSize: fc.constantFrom<unknown>(-1, 1.5, '1000', null, 1e300, 2 ** 60, 1025 * MiB, Number.NaN),
  }),
  fc.record({
    fileName: fc.constant('a.bin'),
    fileSize: fc.constant(100 * MiB),
    chunkSize: fc.constantFrom<unknown>(0, -5 * MiB, 1, 1024, 6 * 1024 * 1024 * 1024, '5242880', 5 * MiB + 0.5),
  }),
  fc.record({
    fileName: fc.constant('a.bin'),
    fileSize: fc.constant(1000),
    checksumSha256: fc.constantFrom<unknown>('', 'abc', 'A'.repeat(44), 'x'.repeat(10_000), 5),
  }),
  fc.record({
    fileName: fc.constant('a.bin'),
    fileSize: fc.constant(1000),
    metadata: fc.constantFrom<unknown>(
      'x',
      [],
      { 'bad key': 'v' },
      { k: 5 },
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])),
      { k: 'v'.repeat(2000) },
    ),
  }),
  fc.record({
    fileName: fc.constant('a.bin'),
    fileSize: fc.constant(1000),
    contentType: fc.constantFrom<unknown>('', 'text', 'a/b\r\nx: y', 'x'.repeat(300), 7),
  }),
  fc.record({ fileName: fc.constant('a.bin'), fileSize: fc.constant(1000), extra: evil }),
  fc.record({ fileSize: fc.constant(1000) }),
  fc.record({ fileName: fc.constant('a.bin') }),
);
const badPresign = fc.oneof(
  fc.record({ chunks: evil }),
  fc.constant({ chunks: [] }),
  fc.constant({ chunks: Array.from({ length: 101 }, (_, i) => ({ chunkIndex: i })) }),
  fc.record({ chunks: fc.tuple(fc.record({ chunkIndex: evil })) }),
  fc.record({ chunks: fc.tuple(fc.record({ chunkIndex: fc.integer({ min: 3, max: 2 ** 31 }) })) }),
  fc.record({ chunks: fc.tuple(fc.record({ chunkIndex: fc.integer({ min: -(2 ** 31), max: -1 }) })) }),
  fc.constant({ chunks: [{ chunkIndex: 2 }, { chunkIndex: 2 }] }),
  fc.record({ chunks: fc.tuple(fc.record({ chunkIndex: fc.constant(2), md5: evil })) }),
  fc.record({ chunks: fc.tuple(fc.record({ chunkIndex: fc.constant(2), sha256: fc.string() })) }),
  fc.record({ chunks: fc.tuple(fc.record({ chunkIndex: fc.constant(2), extra: evil })) }),
);
const badReport = fc.oneof(
  fc.record({ etag: evil.filter((v) => typeof v !== 'string'), size: fc.constant(5 * MiB) }),
  fc.record({
    etag: fc.string(),
    size: fc.oneof(
      evil,
      fc.integer().filter((n) => n !== 5 * MiB),
    ),
  }),
  fc.record({ size: fc.constant(5 * MiB) }),
  fc.record({ etag: fc.constant('"abc"'), size: fc.constant(5 * MiB), attempts: evil }),
  fc.record({ etag: fc.constant('"abc"'), size: fc.constant(5 * MiB), md5: fc.constant('not-base64!') }),
  fc.record({ etag: fc.constant('"abc"'), size: fc.constant(5 * MiB), extra: evil }),
);
const badComplete = fc.oneof(
  fc.record({ chunks: evil.filter((v) => !Array.isArray(v) || v.length > 0) }),
  fc.record({ extra: evil }),
  fc.constant([]),
);

const authHeader = (key: string) => ({ authorization: `Bearer ${key}` });
const withJson = (body: string) => ({
  'content-type': 'application/json',
  'content-length': String(Buffer.byteLength(body)),
});

const hostileRequest: fc.Arbitrary<HostileRequest> = fc.oneof(
  // 1. Any endpoint, bad or missing credentials.
  fc.record({ route: fc.constantFrom(...routes), auth: badAuth }).map(({ route, auth }) => ({
    what: `auth ${JSON.stringify(auth?.slice(0, 20))}`,
    method: route[0],
    path: route[1].replace('ID', 'OPEN').replace('FILE', 'FILE'),
    headers: auth === undefined ? ({} as Record<string, string>) : { authorization: auth },
  })),
  // 2. Bad, foreign or traversing ids in every id position.
  fc
    .record({ route: fc.constantFrom(...routes.filter((r) => /ID|FILE/.test(r[1]))), id: fc.oneof(badIds, foreignId) })
    .map(({ route, id }) => ({
      what: `id ${id.slice(0, 40)}`,
      method: route[0],
      path: route[1].replace(/ID|FILE/, id),
      headers: { 'x-key': 'alice', ...(route[0] === 'PUT' ? { 'content-length': '0' } : {}) },
      ...(route[0] === 'POST' || route[0] === 'PATCH' ? { body: '{}' } : {}),
    })),
  // 3. Bad chunk indexes (path), on the open upload.
  fc
    .record({
      method: fc.constantFrom('PATCH', 'PUT'),
      index: fc.constantFrom(
        '-1',
        '3',
        '10000',
        '99999999999',
        '1e2',
        '0x1',
        '%201',
        '1.0',
        '%31',
        'NaN',
        '..',
        '0%00',
      ),
    })
    .map(({ method, index }) => ({
      what: `chunk index ${index}`,
      method,
      path: `/v1/uploads/OPEN/chunks/${index}`,
      headers: { 'x-key': 'alice', ...(method === 'PUT' ? { 'content-length': '5' } : {}) },
      body: method === 'PUT' ? 'abcde' : json({ etag: '"x"', size: 5 }),
    })),
  // 4. Schema-violating JSON, per endpoint.
  fc
    .oneof(
      badInit.map((b) => ['POST', '/v1/uploads', b] as const),
      badPresign.map((b) => ['POST', '/v1/uploads/OPEN/chunks/presign', b] as const),
      badReport.map((b) => ['PATCH', '/v1/uploads/OPEN/chunks/2', b] as const),
      badComplete.map((b) => ['POST', '/v1/uploads/OPEN/complete', b] as const),
    )
    .map(([method, path, b]) => {
      const body = json(b);
      return {
        what: `body ${body.slice(0, 60)}`,
        method,
        path,
        headers: { 'x-key': 'alice', ...withJson(body) },
        body,
      };
    }),
  // 5. Not JSON, or absurd JSON (deep, huge, over the limit).
  fc
    .record({
      target: fc.constantFrom(
        ['POST', '/v1/uploads'],
        ['POST', '/v1/uploads/OPEN/chunks/presign'],
        ['PATCH', '/v1/uploads/OPEN/chunks/2'],
        ['POST', '/v1/uploads/OPEN/complete'],
      ),
      body: rawBodies,
    })
    .map(({ target, body }) => ({
      what: `raw ${body.slice(0, 30)}…(${body.length})`,
      method: target[0],
      path: target[1],
      headers: { 'x-key': 'alice', ...withJson(body) },
      body,
    })),
  // 6. Wrong content types, encodings and charsets with an otherwise valid init body.
  fc
    .record({
      header: fc.constantFrom(
        ['content-type', 'text/plain'],
        ['content-type', 'application/x-www-form-urlencoded'],
        ['content-type', 'multipart/form-data; boundary=x'],
        // (A charset parameter on application/json changes nothing, RFC 8259 §11: not hostile.)
        ['content-type', 'application/xml'],
        ['content-type', 'text/json'],
        ['content-encoding', 'gzip'],
        ['content-encoding', 'br'],
        ['content-encoding', 'bogus'],
      ),
    })
    .map(({ header }) => {
      const body = json({ fileName: 'a.bin', fileSize: 10 });
      return {
        what: `${header[0]}: ${header[1]}`,
        method: 'POST',
        path: '/v1/uploads',
        headers: { 'x-key': 'alice', ...withJson(body), [header[0]]: header[1] },
        body,
      };
    }),
  // 7. Bad headers around otherwise refused requests: oversized Idempotency-Key, odd request ids.
  fc
    .record({
      // Over the 255-character limit (an empty one is just absent: Node trims header values).
      key: fc.oneof(fc.constant('k'.repeat(256)), fc.string({ minLength: 256, maxLength: 600 })),
      rid: fc.string({ maxLength: 300 }),
    })
    .map(({ key, rid }) => {
      const body = json({ fileName: 'a.bin', fileSize: 10 });
      const safe = (s: string) => s.replace(/[^\x21-\x7e]/g, '_');
      return {
        what: `idempotency key of ${key.length}`,
        method: 'POST',
        path: '/v1/uploads',
        headers: {
          'x-key': 'alice',
          ...withJson(body),
          'idempotency-key': safe(key),
          'x-request-id': safe(rid),
        },
        body,
      };
    }),
  // 8. Methods no route has, and paths nothing serves.
  fc
    .record({
      method: fc.constantFrom('PUT', 'PATCH', 'DELETE', 'POST', 'PROPFIND', 'TRACE', 'FOO'),
      path: fc.constantFrom(
        '/v1/uploads',
        '/v1/uploads/OPEN/complete',
        '/v1/files/FILE',
        '/v1/uploads/OPEN/chunks',
        '/v1/../../etc/passwd',
        '/v1/uploads/OPEN/chunks/0/../../../',
        '/v1//uploads',
        '/v2/uploads',
        '/v1/uploads/OPEN/chunks/presign/x',
      ),
    })
    .filter(
      ({ method, path }) =>
        !(method === 'POST' && path === '/v1/uploads') && !(method === 'POST' && path.endsWith('complete')),
    )
    .map(({ method, path }) => ({ what: `${method} ${path}`, method, path, headers: { 'x-key': 'alice' } })),
  // 9. Relay PUTs whose size does not fit the chunk (refused before the body is read), huge declared lengths.
  fc
    .record({
      declared: fc.constantFrom('0', '1', String(5 * MiB - 1), String(5 * MiB + 1), '99999999999999', String(2 ** 53)),
      md5: fc.constantFrom(undefined, 'bad', 'AAAAAAAAAAAAAAAAAAAAAA=='),
    })
    .map(({ declared, md5 }) => ({
      what: `relay PUT length ${declared}`,
      method: 'PUT',
      path: '/v1/uploads/OPEN/chunks/2',
      headers: {
        'x-key': 'alice',
        'content-type': 'application/octet-stream',
        'content-length': declared,
        ...(md5 ? { 'content-md5': md5 } : {}),
      },
      body: Number(declared) <= 64 * 1024 ? 'x'.repeat(Number(declared)) : 'x'.repeat(1024),
    })),
  // 10. Ranges on the completed file: satisfiable ones may succeed, the rest are 416 (never 5xx).
  fc
    .record({
      range: fc.oneof(
        fc.constantFrom(
          'bytes=5-1',
          'bytes=1000-',
          'bytes=-0',
          'bytes=abc',
          'bytes=0-1,5-6',
          'items=0-1',
          'bytes=99999999999999999999-',
        ),
        fc
          .tuple(fc.integer({ min: -5, max: 3000 }), fc.integer({ min: -5, max: 3000 }))
          .map(([a, b]) => `bytes=${a}-${b}`),
      ),
      method: fc.constantFrom('GET', 'HEAD'),
      ifRange: fc.constantFrom(undefined, '"nope"', 'Mon, 01 Jan 1990 00:00:00 GMT', 'garbage'),
    })
    .map(({ range, method, ifRange }) => ({
      what: `range ${range}`,
      method,
      path: '/v1/files/FILE/content',
      headers: { 'x-key': 'alice', range, ...(ifRange ? { 'if-range': ifRange } : {}) },
      maySucceed: true,
    })),
);

/** Resolves the placeholders: OPEN/BOBS/FILE ids, and `x-key: alice` as alice's real key. */
function materialise(r: HostileRequest): HostileRequest {
  const path = r.path.replace('OPEN', ids.open).replace('BOBS', ids.bobs).replace('FILE', ids.file);
  const headers = { ...r.headers };
  if (headers['x-key'] === 'alice') {
    delete headers['x-key'];
    Object.assign(headers, authHeader(srv.keys.alice));
  }
  return { ...r, path, headers };
}

const CATALOGUE = new Set(Object.keys(ERRORS));

test.serial(
  `${RUNS} generated hostile requests: catalogued 4xx only, no state change, server up, memory flat`,
  async (t) => {
    t.timeout(240_000);
    const before = await snapshot();
    const rss0 = process.memoryUsage().rss;
    const statuses = new Map<number, number>();
    const codes = new Map<string, number>();
    let seen = 0;
    await fc.assert(
      fc.asyncProperty(hostileRequest, async (generated) => {
        const r = materialise(generated);
        const res = await send(r);
        seen++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const ctx = `${r.what} → ${r.method} ${r.path.slice(0, 120)}: ${res.status} ${res.body.slice(0, 300)}`;
        if (r.maySucceed && (res.status === 200 || res.status === 206)) return;
        if (res.status < 400 || res.status >= 500) throw new Error(`not a 4xx: ${ctx}`);
        if (r.method === 'HEAD') return;
        let code: unknown;
        try {
          code = (JSON.parse(res.body) as { error: { code: string; message: string } }).error.code;
        } catch {
          throw new Error(`not the error shape: ${ctx}`);
        }
        if (typeof code !== 'string' || !CATALOGUE.has(code)) throw new Error(`uncatalogued code: ${ctx}`);
        if (ERRORS[code as keyof typeof ERRORS].status !== res.status) throw new Error(`status/code mismatch: ${ctx}`);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        if (!res.headers['x-request-id']) throw new Error(`no X-Request-Id: ${ctx}`);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true, includeErrorInReport: true },
    );
    t.log(`seed ${SEED}; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    t.log(`codes ${JSON.stringify(Object.fromEntries(codes))}`);
    t.true(seen >= 500, `${seen} requests`);
    t.is(await snapshot(), before, 'the database is exactly as before');
    t.is((await fetch(`${srv.url}/healthz`)).status, 200);
    t.is((await fetch(`${srv.url}/readyz`)).status, 200);
    const grown = (process.memoryUsage().rss - rss0) / MiB;
    t.log(`RSS grew ${grown.toFixed(1)} MiB`);
    t.true(grown < 50, `RSS grew ${grown.toFixed(1)} MiB`);
    // The reference upload still works for its owner: nothing hostile broke it.
    const status = await fetch(`${srv.url}/v1/uploads/${ids.open}`, { headers: authHeader(srv.keys.alice) });
    t.is(status.status, 200);
    t.like(await status.json(), { status: 'IN_PROGRESS', uploadedChunks: 2, missingChunks: [2] });
  },
);

/** Writes raw bytes, returns everything the server sent until it closed (or 5 s passed). */
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port(), '127.0.0.1');
    let out = '';
    socket.on('data', (d) => {
      out += d.toString('latin1');
    });
    const done = () => resolve(out);
    socket.on('close', done);
    socket.on('error', done);
    socket.setTimeout(5_000, () => socket.destroy());
    socket.write(bytes);
  });
}

test.serial('malformed HTTP at the socket level gets a catalogued JSON 4xx, not a silent close', async (t) => {
  const before = await snapshot();
  const cases: Array<[string, string, number]> = [
    ['garbage request line', 'GARBAGE\r\n\r\n', 400],
    ['binary noise', `${randomBytes(64).toString('latin1')}\r\n\r\n`, 400],
    ['bad HTTP version', 'GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n', 400],
    ['header without colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n', 400],
    ['space before colon', 'GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n', 400],
    ['NUL in a header', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', 400],
    ['bad Content-Length', 'POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
    [
      'two different Content-Lengths',
      'POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      400,
    ],
    [
      'Content-Length with Transfer-Encoding (smuggling)',
      'POST /v1/uploads HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    ['bad chunk size', 'POST /v1/uploads HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['LF-only line ends with obs-fold', 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n', 400],
    ['headers over 16 KiB', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`, 431],
  ];
  for (const [name, bytes, status] of cases) {
    const out = await raw(bytes);
    const m = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(out);
    if (!m) {
      t.fail(`${name}: no HTTP answer: ${JSON.stringify(out.slice(0, 200))}`);
      continue;
    }
    t.is(Number(m[1]), status, `${name}: ${out.slice(0, 200)}`);
    t.regex(m[2]!, /content-type: application\/json/i, name);
    const code = (JSON.parse(m[3]!) as { error: { code: string } }).error.code;
    t.true(CATALOGUE.has(code), `${name}: ${code}`);
    t.is(ERRORS[code as keyof typeof ERRORS].status as number, status, name);
    t.regex(m[2]!, /x-request-id: \S+/i, name);
  }
  t.is(await snapshot(), before);
  t.is((await fetch(`${srv.url}/healthz`)).status, 200, 'still serving');
});
