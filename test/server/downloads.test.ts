import { createHash, randomBytes } from 'node:crypto';
import test from 'ava';
import { callApi, uploadFile } from '../helpers/api-client.ts';
import { s3Configured, startTestServer, type TestServer } from '../helpers/app.ts';

const MiB = 1024 * 1024;
const sha256 = (b: Buffer | Uint8Array) => createHash('sha256').update(b).digest('base64');

for (const store of s3Configured() ? (['disk', 's3'] as const) : (['disk'] as const)) {
  let srv: TestServer;
  let file: Buffer;
  let fileId: string;
  let etag: string;
  const title = (s: string) => `[${store}] ${s}`;
  // Small segments so a download spans many ranged GETs and the prefetch window matters.
  const env = { DOWNLOAD_SEGMENT_SIZE: String(256 * 1024), DOWNLOAD_PREFETCH_WINDOW: '3' };

  test.before(async () => {
    srv = await startTestServer({ store, env });
    file = randomBytes(11 * MiB + 12_345);
    const done = await uploadFile(srv.url, srv.keys.alice, file, {
      fileName: 'résumé "final".bin',
      contentType: 'application/x-test',
      checksumSha256: sha256(file),
    });
    fileId = done.fileId;
    etag = done.etag;
  });
  test.after.always(() => srv?.close());

  const content = (headers: Record<string, string> = {}, method = 'GET', key = srv.keys.alice) =>
    fetch(`${srv.url}/v1/files/${fileId}/content`, { method, headers: { authorization: `Bearer ${key}`, ...headers } });

  test(
    title('the manifest lists every chunk with its range, SHA-256 and a working presigned ranged GET'),
    async (t) => {
      const res = await callApi(srv.url, 'GET', `/v1/files/${fileId}`, srv.keys.alice);
      t.is(res.status, 200);
      const m = res.body;
      t.like(m, { fileId, size: file.length, contentType: 'application/x-test', etag, chunkSize: 5 * MiB });
      t.is(m.checksumSha256, sha256(file));
      t.deepEqual(
        m.chunks.map((c: { start: number; end: number }) => [c.start, c.end]),
        [
          [0, 5 * MiB - 1],
          [5 * MiB, 10 * MiB - 1],
          [10 * MiB, file.length - 1],
        ],
      );
      const parts: Buffer[] = [];
      for (const c of m.chunks) {
        const got = await fetch(c.url, { headers: { range: `bytes=${c.start}-${c.end}`, 'if-match': m.etag } });
        t.is(got.status, 206);
        const bytes = Buffer.from(await got.arrayBuffer());
        t.is(sha256(bytes), c.sha256, `chunk ${c.chunkIndex} matches its recorded SHA-256`);
        parts.push(bytes);
      }
      t.true(Buffer.concat(parts).equals(file));
      const first = m.chunks[0];
      const stale = await fetch(first.url, {
        headers: { range: `bytes=${first.start}-${first.end}`, 'if-match': '"not-the-etag"' },
      });
      t.is(stale.status, 412, 'If-Match pins the object');
    },
  );

  test(
    title('streaming the whole file: 200 with length, ETag, Accept-Ranges and a safe Content-Disposition'),
    async (t) => {
      const res = await content();
      t.is(res.status, 200);
      t.is(res.headers.get('content-length'), String(file.length));
      t.is(res.headers.get('accept-ranges'), 'bytes');
      t.is(res.headers.get('etag'), etag);
      t.is(res.headers.get('content-type'), 'application/x-test');
      t.regex(
        res.headers.get('content-disposition') ?? '',
        /^attachment; filename="r_sum_ _final_.bin"; filename\*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22.bin$/,
      );
      t.true(Buffer.from(await res.arrayBuffer()).equals(file));
    },
  );

  const size = () => file.length;
  const matrix: Array<[string, () => string, () => [number, number] | 'full' | 416]> = [
    ['first byte', () => 'bytes=0-0', () => [0, 0]],
    ['last byte', () => `bytes=${size() - 1}-${size() - 1}`, () => [size() - 1, size() - 1]],
    ['suffix', () => 'bytes=-1000', () => [size() - 1000, size() - 1]],
    ['open-ended', () => `bytes=${size() - 70_000}-`, () => [size() - 70_000, size() - 1]],
    ['across chunk boundaries', () => `bytes=${5 * MiB - 10}-${10 * MiB + 10}`, () => [5 * MiB - 10, 10 * MiB + 10]],
    ['end past the end is clamped', () => `bytes=${size() - 5}-${size() + 100}`, () => [size() - 5, size() - 1]],
    ['start past the end', () => `bytes=${size()}-`, () => 416],
    ['malformed', () => 'bytes=abc', () => 416],
    ['reversed', () => 'bytes=10-5', () => 416],
    ['zero suffix', () => 'bytes=-0', () => 416],
    ['another unit is ignored', () => 'items=0-5', () => 'full'],
  ];
  for (const [name, header, expected] of matrix) {
    test(title(`Range matrix: ${name}`), async (t) => {
      const res = await content({ range: header() });
      const want = expected();
      if (want === 416) {
        t.is(res.status, 416);
        t.is(res.headers.get('content-range'), `bytes */${size()}`);
        t.is((await res.json()).error.code, 'range_not_satisfiable');
      } else if (want === 'full') {
        t.is(res.status, 200);
        t.true(Buffer.from(await res.arrayBuffer()).equals(file));
      } else {
        const [a, b] = want;
        t.is(res.status, 206);
        t.is(res.headers.get('content-range'), `bytes ${a}-${b}/${size()}`);
        t.is(res.headers.get('content-length'), String(b - a + 1));
        t.true(Buffer.from(await res.arrayBuffer()).equals(file.subarray(a, b + 1)), 'byte for byte');
      }
    });
  }

  test(title('If-Range: a matching ETag gets the range, another validator the whole file'), async (t) => {
    t.is((await content({ range: 'bytes=0-9', 'if-range': etag })).status, 206);
    const other = await content({ range: 'bytes=0-9', 'if-range': '"other"' });
    t.is(other.status, 200);
    t.is(Number(other.headers.get('content-length')), file.length);
    await other.body?.cancel();
  });

  test(title('HEAD answers the headers without a body'), async (t) => {
    const res = await content({ range: 'bytes=10-19' }, 'HEAD');
    t.is(res.status, 206);
    t.is(res.headers.get('content-length'), '10');
    t.is((await res.arrayBuffer()).byteLength, 0);
  });

  test(title('a client that disconnects mid-download leaves inflight_chunks back at 0'), async (t) => {
    const ac = new AbortController();
    const res = await fetch(`${srv.url}/v1/files/${fileId}/content`, {
      headers: { authorization: `Bearer ${srv.keys.alice}` },
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    t.true((await inflight()) > 0, 'segments are being fetched ahead');
    ac.abort();
    let n = -1;
    for (let i = 0; i < 100 && n !== 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      n = await inflight();
    }
    t.is(n, 0);
    const again = await content({ range: 'bytes=0-99' });
    t.true(Buffer.from(await again.arrayBuffer()).equals(file.subarray(0, 100)), 'and the server still serves');
  });

  async function inflight(): Promise<number> {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    return Number(/^inflight_chunks (\d+)/m.exec(text)?.[1]);
  }

  test(title('files are 404 for another principal, for unfinished uploads and for bad ids'), async (t) => {
    for (const path of [`/v1/files/${fileId}`, `/v1/files/${fileId}/content`]) {
      const res = await callApi(srv.url, 'GET', path, srv.keys.bob);
      t.is(res.status, 404);
      t.is(res.body.error.code, 'file_not_found');
    }
    const open = await callApi(srv.url, 'POST', '/v1/uploads', srv.keys.alice, { fileName: 'x', fileSize: 3 });
    t.is((await callApi(srv.url, 'GET', `/v1/files/${open.body.uploadId}`, srv.keys.alice)).status, 404);
    t.is((await callApi(srv.url, 'GET', '/v1/files/not-a-uuid/content', srv.keys.alice)).status, 404);
  });
}
