import { randomUUID } from 'node:crypto';
import test from 'ava';
import { ERRORS } from '../../server/http/errors.ts';
import { startTestServer, type TestServer } from '../helpers/app.ts';

/**
 * Bad input on every upload endpoint: each request is refused with a catalogued 4xx in the
 * `{"error": {"code", "message"}}` shape, carries X-Request-Id, and changes nothing in the
 * database (checked after every case and once more at the end, with /healthz still 200).
 */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const MAX_FILE_SIZE = GiB;
/** The reference upload: 3 chunks (5 MiB, 5 MiB, 5 bytes); chunk 0 UPLOADED, chunk 1 PRESIGNED, chunk 2 untouched. */
const REF_SIZE = 10 * MiB + 5;
const RND = randomUUID();

interface Case {
  name: string;
  method: string;
  /** `REF` is replaced by the reference upload's id. */
  path: string;
  /** `null` removes a default header; `<bob>` in a value becomes bob's API key. */
  headers?: Record<string, string | null>;
  /** A raw string is sent as is; anything else as JSON. */
  body?: unknown;
  status: number;
  /** Several codes when more than one is defensible (valid JSON of the wrong shape: invalid_json or invalid_request). */
  code: string | string[];
}

const bad = (code: keyof typeof ERRORS) => ({ status: ERRORS[code].status, code });
const invalid = bad('invalid_request');
const WRONG_SHAPE = { status: 400, code: ['invalid_request', 'invalid_json'] };

/** Malformed JSON, wrong Content-Type and oversized bodies: the same on every endpoint with a JSON body. */
const bodyCases = (method: string, path: string, valid: unknown): Case[] => [
  ...(
    [
      ['truncated JSON', JSON.stringify(valid).slice(0, -3), bad('invalid_json')],
      ['body `{`', '{', bad('invalid_json')],
      ['body `{"a":1,}`', '{"a":1,}', bad('invalid_json')],
      ['body __proto__', '{"__proto__":{"x":1}}', WRONG_SHAPE],
      ['body `[]`', '[]', invalid],
      ['body `null`', 'null', WRONG_SHAPE],
      ['body a string', '"hello"', WRONG_SHAPE],
      ['body a number', '42', WRONG_SHAPE],
      ['unknown top-level field', { ...(valid as object), extra: 1 }, invalid],
      ['body over 1 MB', { pad: 'x'.repeat(MiB + 10) }, bad('payload_too_large')],
    ] as const
  ).map(([name, body, expected]) => ({ name, method, path, body, ...expected })),
  ...(
    [
      ['text/plain with a JSON body', 'content-type', 'text/plain', valid],
      ['form-urlencoded body', 'content-type', 'application/x-www-form-urlencoded', 'a=1&b=2'],
      ['no Content-Type', 'content-type', null, valid],
      ['unknown Content-Encoding', 'content-encoding', 'bogus', valid],
    ] as const
  ).map(([name, header, value, body]) => ({
    name,
    method,
    path,
    headers: { [header]: value },
    body,
    ...bad('unsupported_media_type'),
  })),
  {
    name: 'gzip Content-Encoding, plain body',
    method,
    path,
    headers: { 'content-encoding': 'gzip' },
    body: valid,
    ...WRONG_SHAPE,
  },
];

/** Missing or wrong credentials. */
const authCases = (method: string, path: string, body?: unknown): Case[] =>
  (
    [
      ['no Authorization', null],
      ['empty Bearer', 'Bearer '],
      ['unknown key', 'Bearer not-a-key'],
      ['Basic scheme', `Basic ${Buffer.from('alice:x').toString('base64')}`],
      ['valid key with trailing junk', 'Bearer <bob> x'],
    ] as const
  ).map(([name, authorization]) => ({ name, method, path, headers: { authorization }, body, ...bad('unauthorized') }));

/** Ids that are unknown, another principal's, or not UUIDs at all. */
const idCases = (method: string, suffix: string, body?: unknown): Case[] => [
  ...(
    [
      ['unknown UUID', RND, bad('upload_not_found')],
      ['nil UUID', '00000000-0000-0000-0000-000000000000', bad('upload_not_found')],
      ['id abc', 'abc', invalid],
      ['UUID with trailing junk', `${RND}x`, invalid],
      ['id ../etc/passwd (encoded)', '..%2Fetc%2Fpasswd', invalid],
      ['id %00', '%00', invalid],
      ['id bad percent-encoding', '%E0%A4%A', invalid],
      ['id of 10 KB', 'a'.repeat(10 * 1024), invalid],
    ] as const
  ).map(([name, id, expected]) => ({ name, method, path: `/v1/uploads/${id}${suffix}`, body, ...expected })),
  // The client normalises `..` away: the request reaches an unknown route.
  { name: 'id ../etc/passwd (raw)', method, path: `/v1/uploads/../etc/passwd${suffix}`, body, ...bad('not_found') },
  {
    name: "bob asks for alice's upload",
    method,
    path: `/v1/uploads/REF${suffix}`,
    headers: { authorization: 'Bearer <bob>' },
    body,
    ...bad('upload_not_found'),
  },
];

const idemCases = (method: string, path: string, body: unknown): Case[] =>
  [
    ['Idempotency-Key of 256 characters', 'k'.repeat(256)],
    ['Idempotency-Key with spaces', 'a key'],
  ].map(([name, key]) => ({ name: name!, method, path, headers: { 'idempotency-key': key! }, body, ...invalid }));

/** One case of an endpoint's own validation. */
const mk = (method: string, path: string, name: string, body: unknown, expected = invalid): Case => ({
  name,
  method,
  path,
  body,
  ...expected,
});
const INIT = { fileName: 'x.bin', fileSize: 100 };
const init = (body: unknown, name: string, expected = invalid) => mk('POST', '/v1/uploads', name, body, expected);
const PRESIGN = '/v1/uploads/REF/chunks/presign';
const presign = (chunks: unknown, name: string, expected = invalid) => mk('POST', PRESIGN, name, { chunks }, expected);
const REPORT = { etag: '"e2"', size: 5 };
const report = (i: string, body: unknown, name: string, expected = invalid) =>
  mk('PATCH', `/v1/uploads/REF/chunks/${i}`, name, body, expected);
const list = (query: string, name = query): Case => ({ name, method: 'GET', path: `/v1/uploads?${query}`, ...invalid });
const cursor = (v: unknown) => encodeURIComponent(Buffer.from(JSON.stringify(v)).toString('base64url'));
const COMPLETE = '/v1/uploads/REF/complete';
const complete = (body: unknown, name: string) => mk('POST', COMPLETE, name, body);
const B64_16 = 'AAAAAAAAAAAAAAAAAAAAAA==';

const groups: Record<string, Case[]> = {
  'POST /v1/uploads': [
    ...bodyCases('POST', '/v1/uploads', INIT),
    init({}, 'empty object'),
    init({ fileName: 'x.bin' }, 'no fileSize'),
    init({ fileSize: 1 }, 'no fileName'),
    init({ ...INIT, fileSize: '100' }, 'fileSize a string'),
    init({ ...INIT, fileSize: 1.5 }, 'fileSize a float'),
    init({ ...INIT, fileSize: true }, 'fileSize a boolean'),
    init({ ...INIT, fileSize: null }, 'fileSize null'),
    init({ ...INIT, fileSize: -1 }, 'fileSize -1'),
    init('{"fileName":"x.bin","fileSize":1e300}', 'fileSize 1e300'),
    init({ ...INIT, fileSize: 2 ** 53 }, 'fileSize 2**53'),
    init({ ...INIT, fileSize: MAX_FILE_SIZE + 1 }, 'fileSize above MAX_FILE_SIZE', bad('file_too_large')),
    init({ ...INIT, fileSize: Number.MAX_SAFE_INTEGER }, 'fileSize MAX_SAFE_INTEGER', bad('file_too_large')),
    init({ ...INIT, fileName: 123 }, 'fileName a number'),
    init({ ...INIT, fileName: '' }, 'fileName empty'),
    init({ ...INIT, fileName: 'a\nb' }, 'fileName with a newline'),
    init({ ...INIT, fileName: 'n'.repeat(1025) }, 'fileName of 1025 characters'),
    init({ ...INIT, chunkSize: '5242880' }, 'chunkSize a string'),
    init({ ...INIT, chunkSize: 1 }, 'chunkSize 1'),
    init({ ...INIT, chunkSize: 0 }, 'chunkSize 0'),
    init({ ...INIT, chunkSize: -5 * MiB }, 'chunkSize negative'),
    init({ ...INIT, chunkSize: 5 * MiB + 0.5 }, 'chunkSize a float'),
    init({ ...INIT, chunkSize: 6 * GiB }, 'chunkSize 6 GiB'),
    init({ ...INIT, contentType: 5 }, 'contentType a number'),
    init({ ...INIT, contentType: 'not a media type' }, 'contentType malformed'),
    init({ ...INIT, checksumSha256: 'abc=' }, 'checksumSha256 wrong length'),
    init({ ...INIT, checksumSha256: `${'!'.repeat(43)}=` }, 'checksumSha256 not base64'),
    init({ ...INIT, metadata: { a: 1 } }, 'metadata value a number'),
    init({ ...INIT, metadata: { 'bad key': 'v' } }, 'metadata key with a space'),
    init({ ...INIT, metadata: 'x' }, 'metadata a string'),
    ...idemCases('POST', '/v1/uploads', INIT),
    ...authCases('POST', '/v1/uploads', INIT),
  ],
  'GET /v1/uploads': [
    list('limit=0'),
    list('limit=101'),
    list('limit=abc'),
    list('limit=1.5'),
    list('limit=-1'),
    list('limit='),
    list('limit=1&limit=2', 'limit twice'),
    list('status=NOPE'),
    list('status=completed'),
    list('cursor=garbage'),
    list(`cursor=${'c'.repeat(600)}`, 'cursor of 600 characters'),
    list(`cursor=${cursor(['2024-01-01T00:00:00.000Z', '-'.repeat(36)])}`, 'cursor with a non-UUID id'),
    list(`cursor=${cursor(['-271821-04-20T00:00:00.000Z', RND])}`, 'cursor with an out-of-range date'),
    list('foo=bar', 'unknown param'),
    ...authCases('GET', '/v1/uploads'),
  ],
  'GET /v1/uploads/{id}': [...idCases('GET', ''), ...authCases('GET', '/v1/uploads/REF')],
  'POST /v1/uploads/{id}/chunks/presign': [
    ...bodyCases('POST', PRESIGN, { chunks: [{ chunkIndex: 2 }] }),
    ...idCases('POST', '/chunks/presign', { chunks: [{ chunkIndex: 2 }] }),
    presign('x', 'chunks a string'),
    presign([], 'empty batch'),
    presign(
      Array.from({ length: 101 }, () => ({ chunkIndex: 2 })),
      '101 entries',
    ),
    presign([{ chunkIndex: 2 }, { chunkIndex: 2 }], 'duplicate chunkIndex'),
    presign([{ chunkIndex: -1 }], 'chunkIndex -1'),
    presign([{ chunkIndex: 3 }], 'chunkIndex = totalChunks', bad('chunk_index_out_of_range')),
    presign(
      [{ chunkIndex: 2 }, { chunkIndex: 3 }],
      'a valid and an out-of-range chunk',
      bad('chunk_index_out_of_range'),
    ),
    presign([{ chunkIndex: 10000 }], 'chunkIndex 10000', bad('chunk_index_out_of_range')),
    presign([{ chunkIndex: 1.5 }], 'chunkIndex 1.5'),
    presign([{ chunkIndex: 'x' }], "chunkIndex 'x'"),
    presign([{ chunkIndex: '2' }], "chunkIndex '2'"),
    presign([{ chunkIndex: true }], 'chunkIndex true'),
    presign([{}], 'entry without chunkIndex'),
    presign([{ chunkIndex: 2, extra: 1 }], 'unknown field in an entry'),
    presign([{ chunkIndex: 2, md5: 'abc' }], 'md5 wrong length'),
    presign([{ chunkIndex: 2, md5: `${'!'.repeat(22)}==` }], 'md5 not base64'),
    presign([{ chunkIndex: 2, md5: B64_16.replace('==', 'AA') }], 'md5 of 18 bytes'),
    presign([{ chunkIndex: 2, sha256: B64_16 }], 'sha256 of 16 bytes'),
    presign([{ chunkIndex: 2, sha256: `${'*'.repeat(43)}=` }], 'sha256 not base64'),
    ...authCases('POST', PRESIGN, { chunks: [{ chunkIndex: 2 }] }),
  ],
  'PATCH /v1/uploads/{id}/chunks/{i}': [
    ...bodyCases('PATCH', '/v1/uploads/REF/chunks/2', REPORT),
    ...idCases('PATCH', '/chunks/2', REPORT),
    report('-1', REPORT, 'chunk -1'),
    report('3', REPORT, 'chunk = totalChunks', bad('chunk_index_out_of_range')),
    report('9999', REPORT, 'chunk 9999', bad('chunk_index_out_of_range')),
    report('10000', REPORT, 'chunk 10000'),
    report('1.5', REPORT, 'chunk 1.5'),
    report('x', REPORT, "chunk 'x'"),
    report('0x2', REPORT, "chunk '0x2'"),
    report('2e0', REPORT, "chunk '2e0'"),
    report('2', { size: 5 }, 'no etag'),
    report('2', { ...REPORT, etag: '' }, 'etag empty'),
    report('2', { ...REPORT, etag: 7 }, 'etag a number'),
    report('2', { ...REPORT, etag: 'e'.repeat(257) }, 'etag of 257 characters'),
    report('2', { etag: '"e2"' }, 'no size'),
    report('2', { ...REPORT, size: '5' }, 'size a string'),
    report('2', { ...REPORT, size: 5.5 }, 'size a float'),
    report('2', { ...REPORT, size: -1 }, 'size -1'),
    report('2', { ...REPORT, size: 6 }, 'wrong size for the last chunk'),
    report('1', { ...REPORT, size: 5 }, 'wrong size for a presigned chunk'),
    report('0', { etag: '"other"', size: 1 }, 'wrong size for an uploaded chunk'),
    report('2', { ...REPORT, size: 2 ** 53 }, 'size 2**53'),
    report('2', { ...REPORT, attempts: 0 }, 'attempts 0'),
    report('2', { ...REPORT, attempts: 1001 }, 'attempts 1001'),
    report('2', { ...REPORT, attempts: false }, 'attempts a boolean'),
    report('2', { ...REPORT, md5: 'abc' }, 'md5 wrong length'),
    report('2', { ...REPORT, md5: `${'?'.repeat(22)}==` }, 'md5 not base64'),
    report('2', { ...REPORT, sha256: 'abc' }, 'sha256 wrong length'),
    ...authCases('PATCH', '/v1/uploads/REF/chunks/2', REPORT),
  ],
  'POST /v1/uploads/{id}/complete': [
    ...bodyCases('POST', COMPLETE, { chunks: [{ chunkIndex: 0, etag: '"e"' }] }),
    ...idCases('POST', '/complete', {}),
    complete({ chunks: 'x' }, 'chunks a string'),
    complete({ chunks: [{ chunkIndex: -1, etag: '"e"' }] }, 'chunkIndex -1'),
    complete({ chunks: [{ chunkIndex: 'x', etag: '"e"' }] }, "chunkIndex 'x'"),
    complete({ chunks: [{ chunkIndex: 0 }] }, 'entry without etag'),
    complete({ chunks: [{ chunkIndex: 0, etag: '"e"', extra: 1 }] }, 'unknown field in an entry'),
    complete({ chunks: Array.from({ length: 10_001 }, (_, i) => ({ chunkIndex: i, etag: 'e' })) }, '10001 entries'),
    ...idemCases('POST', COMPLETE, {}),
    ...authCases('POST', COMPLETE, {}),
  ],
  'DELETE /v1/uploads/{id}': [
    ...idCases('DELETE', ''),
    ...idemCases('DELETE', '/v1/uploads/REF', undefined),
    ...authCases('DELETE', '/v1/uploads/REF'),
  ],
};

let srv: TestServer;
let ref: string;
let initial: Awaited<ReturnType<typeof snapshot>>;

/** Everything a bad request must leave alone. */
async function snapshot() {
  const rows = async (sql: string, args: unknown[] = []) => (await srv.tdb.pool.query(sql, args)).rows;
  return {
    counts: await rows(`SELECT (SELECT count(*) FROM uploads) AS uploads, (SELECT count(*) FROM chunks) AS chunks,
      (SELECT count(*) FROM idempotency_keys) AS idempotency_keys`),
    upload: await rows('SELECT * FROM uploads WHERE id = $1', [ref]),
    chunks: await rows('SELECT * FROM chunks WHERE upload_id = $1 ORDER BY chunk_index', [ref]),
  };
}

async function send(c: Case) {
  const headers: Record<string, string> = { authorization: `Bearer ${srv.keys.alice}` };
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (c.body !== undefined) {
    body = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
    headers['content-type'] = 'application/json';
  }
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    if (value === null) delete headers[name];
    else headers[name] = value.replace('<bob>', srv.keys.bob);
  }
  // A byte body makes fetch send no Content-Type at all (a string would get text/plain).
  if (typeof body === 'string' && !headers['content-type']) body = new TextEncoder().encode(body);
  const res = await fetch(`${srv.url}${c.path.replace('REF', ref)}`, {
    method: c.method,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  return { status: res.status, requestId: res.headers.get('x-request-id'), text: await res.text() };
}

test.before(async () => {
  srv = await startTestServer({
    env: { MAX_FILE_SIZE: String(MAX_FILE_SIZE), RATE_LIMIT_PER_SECOND: '1000000', RATE_LIMIT_BURST: '1000000' },
  });
  const upload = await srv.app.service.init('alice', { fileName: 'ref.bin', fileSize: REF_SIZE, chunkSize: 5 * MiB });
  ref = upload.id;
  await srv.app.service.presign('alice', ref, [{ chunkIndex: 0 }, { chunkIndex: 1 }]);
  await srv.app.service.report('alice', ref, 0, { etag: '"e0"', size: 5 * MiB });
  initial = await snapshot();
});
test.after.always(() => srv?.close());

for (const [endpoint, cases] of Object.entries(groups)) {
  for (const c of cases) {
    test.serial(`bad input: ${endpoint} ${c.name}`, async (t) => {
      const before = await snapshot();
      const res = await send(c);
      const codes = Array.isArray(c.code) ? c.code : [c.code];
      const actual = `${c.method} ${c.path.slice(0, 80)} -> ${res.status} ${res.text.slice(0, 300)}`;
      t.true(res.status >= 400 && res.status < 500, actual);
      t.is(res.status, c.status, actual);
      let parsed: { error?: { code?: unknown; message?: unknown } } | undefined;
      try {
        parsed = JSON.parse(res.text);
      } catch {}
      t.true(codes.includes(parsed?.error?.code as string), actual);
      t.true(String(parsed?.error?.code) in ERRORS, `catalogued code: ${actual}`);
      t.is(typeof parsed?.error?.message, 'string', actual);
      t.truthy(res.requestId, 'X-Request-Id');
      t.deepEqual(await snapshot(), before, `nothing changed: ${actual}`);
    });
  }
}

test.serial('bad input: nothing changed after all cases, and the server is healthy', async (t) => {
  t.deepEqual(await snapshot(), initial);
  t.like(initial.upload[0], { status: 'IN_PROGRESS' });
  t.deepEqual(
    initial.chunks.map((c) => [c.chunk_index, c.status]),
    [
      [0, 'UPLOADED'],
      [1, 'PRESIGNED'],
    ],
  );
  t.is((await fetch(`${srv.url}/healthz`)).status, 200);
});
