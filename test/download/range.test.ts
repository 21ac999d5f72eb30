import test from 'ava';
import { contentDisposition, ifRangeMatches, parseRange } from '../../server/download/range.ts';

const SIZE = 1000;
const cases: Array<[string | undefined, ReturnType<typeof parseRange>]> = [
  [undefined, { kind: 'full' }],
  ['', { kind: 'full' }],
  ['bytes=0-0', { kind: 'partial', start: 0, end: 0 }],
  ['bytes=0-499', { kind: 'partial', start: 0, end: 499 }],
  ['bytes=500-', { kind: 'partial', start: 500, end: 999 }],
  ['bytes=999-999', { kind: 'partial', start: 999, end: 999 }],
  ['bytes=990-5000', { kind: 'partial', start: 990, end: 999 }],
  ['bytes=-1', { kind: 'partial', start: 999, end: 999 }],
  ['bytes=-100', { kind: 'partial', start: 900, end: 999 }],
  ['bytes=-5000', { kind: 'partial', start: 0, end: 999 }],
  ['BYTES = 5-9', { kind: 'partial', start: 5, end: 9 }],
  ['bytes=1000-', { kind: 'unsatisfiable' }],
  ['bytes=1000-1000', { kind: 'unsatisfiable' }],
  ['bytes=-0', { kind: 'unsatisfiable' }],
  ['bytes=9-5', { kind: 'unsatisfiable' }],
  ['bytes=-', { kind: 'unsatisfiable' }],
  ['bytes=a-b', { kind: 'unsatisfiable' }],
  ['bytes=1.5-2', { kind: 'unsatisfiable' }],
  ['bytes=0-1,x', { kind: 'unsatisfiable' }],
  ['bytes', { kind: 'unsatisfiable' }],
  ['bytes=99999999999999999999-', { kind: 'unsatisfiable' }],
  ['bytes=0-1,5-9', { kind: 'full' }],
  ['items=0-5', { kind: 'full' }],
];
for (const [header, expected] of cases) {
  test(`Range ${JSON.stringify(header)} on ${SIZE} bytes → ${expected.kind}`, (t) => {
    t.deepEqual(parseRange(header, SIZE), expected);
  });
}

test('every satisfiable range stays inside the representation (many sizes and headers)', (t) => {
  for (const size of [1, 2, 10, 4096, 8 * 1024 * 1024 + 3]) {
    for (const [a, b] of [
      [0, 0],
      [0, size - 1],
      [size - 1, size + 10],
      [Math.floor(size / 2), Math.floor(size / 2) + 7],
    ] as const) {
      for (const h of [`bytes=${a}-${b}`, `bytes=${a}-`, `bytes=-${b + 1}`]) {
        const r = parseRange(h, size);
        if (r.kind === 'partial' && !(r.start >= 0 && r.start <= r.end && r.end <= size - 1)) t.fail(`${h} on ${size}`);
      }
    }
  }
  t.deepEqual(parseRange('bytes=-5', 0), { kind: 'unsatisfiable' }, 'nothing to send from an empty file');
  t.pass();
});

test('If-Range: a strong ETag matches exactly, a weak one never, a date matches Last-Modified', (t) => {
  const lm = new Date('2026-11-28T10:00:00.500Z');
  t.true(ifRangeMatches(undefined, '"a"'));
  t.true(ifRangeMatches('"a"', '"a"'));
  t.false(ifRangeMatches('"b"', '"a"'));
  t.false(ifRangeMatches('W/"a"', '"a"'));
  t.true(ifRangeMatches('Sat, 28 Nov 2026 10:00:00 GMT', '"a"', lm));
  t.false(ifRangeMatches('Sat, 28 Nov 2026 09:00:00 GMT', '"a"', lm));
  t.false(ifRangeMatches('garbage', '"a"', lm));
});

test('Content-Disposition carries the name safely (quotes, CR/LF, non-ASCII)', (t) => {
  t.is(contentDisposition('report.pdf'), `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`);
  const evil = contentDisposition('a"b\r\nSet-Cookie: x=1.txt');
  t.false(/[\r\n]/.test(evil));
  t.regex(
    evil,
    /^attachment; filename="a_b__Set-Cookie: x=1.txt"; filename\*=UTF-8''a%22b%0D%0ASet-Cookie%3A%20x%3D1.txt$/,
  );
  t.regex(
    contentDisposition('résumé €.txt'),
    /filename="r_sum_ _.txt"; filename\*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.txt/,
  );
});
