import test from 'ava';
import {
  type ChunkPlan,
  ChunkPlanError,
  chunkRange,
  expectedChunkSize,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  planChunks,
} from '../../server/uploads/chunk-plan.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const DEFAULT = 8 * MiB; // config DEFAULT_CHUNK_SIZE's default
const MAX_FILE = 5 * TiB; // config MAX_FILE_SIZE's default
const LARGEST = MAX_PART_SIZE * MAX_PARTS; // the most 10,000 parts of 5 GiB can hold

/** mulberry32: a tiny seeded PRNG, so a failing size reproduces from the seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [lo, hi], log-uniform so that every magnitude is covered. */
const logUniform = (rand: () => number, lo: number, hi: number) =>
  Math.min(
    hi,
    Math.max(lo, Math.floor(Math.exp(Math.log(lo + 1) + rand() * (Math.log(hi + 1) - Math.log(lo + 1))) - 1)),
  );

/** Edge cases and thousands of seeded random sizes, all in [0, limit]. */
function fileSizes(limit: number, defaultChunkSize: number, seed: number, randomCount: number): number[] {
  const sizes = new Set<number>([0, 1, 2, 1000, MiB, 5_000_000_000, 5 * GiB, 5 * TiB, LARGEST, limit]);
  for (const unit of [MIN_PART_SIZE, DEFAULT, defaultChunkSize, MiB, GiB, MAX_PART_SIZE]) {
    for (let k = 1; k <= 50; k++) for (const d of [-1, 0, 1]) sizes.add(unit * k + d);
  }
  // Around the 10,000-part boundary of the default, of the minimum and of the maximum part size.
  for (const unit of [DEFAULT, defaultChunkSize, MIN_PART_SIZE, MAX_PART_SIZE]) {
    for (const d of [-MiB - 1, -MiB, -2, -1, 0, 1, 2, MiB, MiB + 1]) sizes.add(unit * MAX_PARTS + d);
  }
  for (const d of [-1, 0, 1]) sizes.add(limit + d);
  const rand = mulberry32(seed);
  for (let i = 0; i < randomCount; i++) {
    sizes.add(i % 4 === 3 ? Math.floor(rand() * (limit + 1)) : logUniform(rand, 0, limit));
  }
  return [...sizes].filter((s) => s >= 0 && s <= limit).sort((a, b) => a - b);
}

/** Every invariant of a plan and its ranges; returns what is wrong, empty when all hold. */
function violations(plan: ChunkPlan, fileSize: number): string[] {
  const { chunkSize, totalChunks, lastChunkSize } = plan;
  const bad: string[] = [];
  if (!(Number.isSafeInteger(chunkSize) && chunkSize >= MIN_PART_SIZE && chunkSize <= MAX_PART_SIZE))
    bad.push('chunkSize outside [5 MiB, 5 GiB]');
  if (!(Number.isSafeInteger(totalChunks) && totalChunks >= 1 && totalChunks <= MAX_PARTS))
    bad.push('totalChunks outside [1, 10000]');
  if ((totalChunks - 1) * chunkSize + lastChunkSize !== fileSize) bad.push('chunk sizes do not add up to fileSize');
  if (fileSize === 0 ? totalChunks !== 1 || lastChunkSize !== 0 : !(lastChunkSize > 0 && lastChunkSize <= chunkSize))
    bad.push('lastChunkSize outside (0, chunkSize]');
  if (bad.length > 0) return bad;

  // The ranges tile [0, fileSize): all of them for small plans, a sample (both ends and the middle) for large ones.
  const indexes =
    totalChunks <= 256
      ? [...Array(totalChunks).keys()]
      : [0, 1, 2, totalChunks >> 1, totalChunks - 3, totalChunks - 2, totalChunks - 1];
  let nextStart = 0;
  for (const i of indexes) {
    const r = chunkRange(plan, fileSize, i);
    const size = i === totalChunks - 1 ? lastChunkSize : chunkSize;
    if (r.start !== i * chunkSize || (totalChunks <= 256 && r.start !== nextStart))
      bad.push(`chunk ${i} starts at ${r.start}`);
    if (r.size !== size || expectedChunkSize(plan, fileSize, i) !== size) bad.push(`chunk ${i} is ${r.size} bytes`);
    if (r.end !== r.start + r.size - 1) bad.push(`chunk ${i} ends at ${r.end}`);
    nextStart = r.end + 1;
  }
  if (nextStart !== fileSize) bad.push(`the last chunk ends at ${nextStart - 1}, not ${fileSize - 1}`);
  return bad;
}

const configs = [
  { defaultChunkSize: DEFAULT, maxFileSize: MAX_FILE, seed: 1 },
  { defaultChunkSize: DEFAULT, maxFileSize: LARGEST, seed: 2 },
  { defaultChunkSize: MIN_PART_SIZE, maxFileSize: LARGEST, seed: 3 },
  { defaultChunkSize: MAX_PART_SIZE, maxFileSize: LARGEST, seed: 4 },
  { defaultChunkSize: 7_000_001, maxFileSize: MAX_FILE, seed: 5 }, // a default that is not a whole MiB
];

test('the chosen plan keeps every S3 invariant for more than 10,000 file sizes', (t) => {
  const problems: string[] = [];
  let checked = 0;
  for (const { defaultChunkSize, maxFileSize, seed } of configs) {
    for (const fileSize of fileSizes(maxFileSize, defaultChunkSize, seed, 2500)) {
      checked++;
      const plan = planChunks({ fileSize, defaultChunkSize, maxFileSize });
      const bad = violations(plan, fileSize);
      // The default is kept while it fits in 10,000 chunks (also for files smaller than one chunk) …
      if (fileSize <= defaultChunkSize * MAX_PARTS) {
        if (plan.chunkSize !== defaultChunkSize) bad.push('the default chunk size was not kept');
      } else {
        // … and otherwise grown to the smallest whole MiB that fits.
        if (plan.chunkSize % MiB !== 0) bad.push('grown chunk size is not a whole MiB');
        const smaller = plan.chunkSize - MiB;
        if (smaller >= defaultChunkSize && Math.ceil(fileSize / smaller) <= MAX_PARTS) bad.push('grown too far');
      }
      if (bad.length > 0)
        problems.push(`default ${defaultChunkSize}, fileSize ${fileSize}, ${JSON.stringify(plan)}: ${bad}`);
    }
  }
  t.true(checked >= 10_000, `only ${checked} sizes`);
  t.deepEqual(problems.slice(0, 10), [], `${problems.length} of ${checked} plans break an invariant`);
});

test('a requested chunk size is kept exactly when it fits, and otherwise refused with a size that works', (t) => {
  const rand = mulberry32(6);
  const problems: string[] = [];
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const requestedChunkSize = logUniform(rand, MIN_PART_SIZE, MAX_PART_SIZE);
    // Every other file lies within one chunk of the 10,000-chunk boundary of the requested size.
    const nearBoundary = requestedChunkSize * MAX_PARTS + Math.floor((rand() - 0.5) * 2 * requestedChunkSize);
    const fileSize = i % 2 === 0 ? logUniform(rand, 0, LARGEST) : Math.min(LARGEST, nearBoundary);
    const input = { fileSize, requestedChunkSize, defaultChunkSize: DEFAULT, maxFileSize: LARGEST };
    const ctx = `fileSize ${fileSize}, chunkSize ${requestedChunkSize}`;
    if (Math.ceil(fileSize / requestedChunkSize) <= MAX_PARTS) {
      accepted++;
      const plan = planChunks(input);
      if (plan.chunkSize !== requestedChunkSize) problems.push(`${ctx}: adjusted to ${plan.chunkSize}`);
      for (const v of violations(plan, fileSize)) problems.push(`${ctx}: ${v}`);
      continue;
    }
    refused++;
    const err = t.throws(() => planChunks(input), { instanceOf: ChunkPlanError });
    const suggested = Number(/use at least (\d+)/.exec(err?.message ?? '')?.[1]);
    if (err?.code !== 'invalid_request' || !err.message.includes(String(requestedChunkSize))) {
      problems.push(`${ctx}: ${err?.code} ${err?.message}`);
    } else if (Math.ceil(fileSize / suggested) > MAX_PARTS || Math.ceil(fileSize / (suggested - 1)) <= MAX_PARTS) {
      problems.push(`${ctx}: suggested ${suggested} is not the smallest size that fits`);
    } else {
      // Following the advice works.
      t.is(planChunks({ ...input, requestedChunkSize: suggested }).chunkSize, suggested);
    }
  }
  t.true(accepted > 500 && refused > 500, `accepted ${accepted}, refused ${refused}`);
  t.deepEqual(problems.slice(0, 10), [], `${problems.length} problems`);
});

test('known plans: boundaries of the default, of S3 and of the maximum file size', (t) => {
  const plan = (fileSize: number, maxFileSize = MAX_FILE) =>
    planChunks({ fileSize, defaultChunkSize: DEFAULT, maxFileSize });
  t.deepEqual(plan(0), { chunkSize: DEFAULT, totalChunks: 1, lastChunkSize: 0 });
  t.deepEqual(chunkRange(plan(0), 0, 0), { start: 0, end: -1, size: 0 });
  t.deepEqual(plan(1), { chunkSize: DEFAULT, totalChunks: 1, lastChunkSize: 1 });
  t.deepEqual(chunkRange(plan(1), 1, 0), { start: 0, end: 0, size: 1 });
  t.deepEqual(plan(DEFAULT), { chunkSize: DEFAULT, totalChunks: 1, lastChunkSize: DEFAULT });
  t.deepEqual(plan(DEFAULT + 1), { chunkSize: DEFAULT, totalChunks: 2, lastChunkSize: 1 });
  t.deepEqual(plan(5_000_000_000), {
    chunkSize: DEFAULT,
    totalChunks: 597,
    lastChunkSize: 5_000_000_000 - 596 * DEFAULT,
  });
  t.deepEqual(plan(5 * GiB), { chunkSize: DEFAULT, totalChunks: 640, lastChunkSize: DEFAULT });
  t.deepEqual(plan(DEFAULT * MAX_PARTS), { chunkSize: DEFAULT, totalChunks: MAX_PARTS, lastChunkSize: DEFAULT });
  // One byte more no longer fits 10,000 chunks of 8 MiB: grown to 9 MiB.
  t.deepEqual(plan(DEFAULT * MAX_PARTS + 1), { chunkSize: 9 * MiB, totalChunks: 8889, lastChunkSize: 8 * MiB + 1 });
  t.deepEqual(plan(MAX_FILE), { chunkSize: 525 * MiB, totalChunks: 9987, lastChunkSize: 230 * MiB });
  t.deepEqual(plan(LARGEST, LARGEST), {
    chunkSize: MAX_PART_SIZE,
    totalChunks: MAX_PARTS,
    lastChunkSize: MAX_PART_SIZE,
  });
  t.deepEqual(chunkRange(plan(LARGEST, LARGEST), LARGEST, MAX_PARTS - 1), {
    start: LARGEST - MAX_PART_SIZE,
    end: LARGEST - 1,
    size: MAX_PART_SIZE,
  });
});

test('requested chunk sizes: valid ones are kept, out-of-range ones are refused with the reason', (t) => {
  const plan = (requestedChunkSize: number, fileSize = 100 * MiB) =>
    planChunks({ fileSize, requestedChunkSize, defaultChunkSize: DEFAULT, maxFileSize: LARGEST });
  const refused = (requestedChunkSize: number, fileSize?: number) => {
    const err = t.throws(() => plan(requestedChunkSize, fileSize), { instanceOf: ChunkPlanError });
    t.is(err?.code, 'invalid_request');
    return err?.message ?? '';
  };
  t.deepEqual(plan(10 * MiB), { chunkSize: 10 * MiB, totalChunks: 10, lastChunkSize: 10 * MiB });
  t.deepEqual(plan(GiB, 1), { chunkSize: GiB, totalChunks: 1, lastChunkSize: 1 });
  t.deepEqual(plan(MIN_PART_SIZE, 0), { chunkSize: MIN_PART_SIZE, totalChunks: 1, lastChunkSize: 0 });
  t.deepEqual(plan(MIN_PART_SIZE, MIN_PART_SIZE * MAX_PARTS).totalChunks, MAX_PARTS);
  t.deepEqual(plan(MAX_PART_SIZE, LARGEST).totalChunks, MAX_PARTS);

  const range = /from 5242880 \(5 MiB\) to 5368709120 \(5 GiB\)/;
  t.regex(refused(MIN_PART_SIZE - 1), new RegExp(`${range.source}, got 5242879`));
  // Below 5 MiB is refused even for a file that would be one chunk (S3 would accept it as the last part).
  t.regex(refused(MiB, 1), new RegExp(`${range.source}, got 1048576`));
  t.regex(refused(MAX_PART_SIZE + 1), /5 GiB\), got 5368709121/);
  t.regex(refused(MIN_PART_SIZE + 0.5), /got 5242880\.5/);
  t.regex(refused(Number.NaN), /got NaN/);
  t.regex(refused(Number.POSITIVE_INFINITY), /got Infinity/);
  t.is(
    refused(MIN_PART_SIZE, MIN_PART_SIZE * MAX_PARTS + 1),
    'chunkSize 5242880 would split fileSize 52428800001 into 10001 chunks, more than the 10000 allowed; ' +
      'use at least 5242881, or omit chunkSize.',
  );
  t.regex(refused(DEFAULT, 5 * TiB), /into 655360 chunks.*use at least 549755814, or omit chunkSize/);
  t.regex(refused(MAX_PART_SIZE - 1, LARGEST), /use at least 5368709120 \(5 GiB\)/);
});

test('file sizes: above the maximum is file_too_large; negative, fractional or unsafe is invalid_request', (t) => {
  const plan =
    (fileSize: number, maxFileSize = MAX_FILE) =>
    () =>
      planChunks({ fileSize, defaultChunkSize: DEFAULT, maxFileSize });
  const error = (fn: () => unknown) => t.throws(fn, { instanceOf: ChunkPlanError });

  t.notThrows(plan(MAX_FILE));
  const tooLarge = error(plan(MAX_FILE + 1));
  t.is(tooLarge?.code, 'file_too_large');
  t.is(tooLarge?.message, 'fileSize 5497558138881 is above the maximum file size, 5497558138880 (5 TiB).');
  t.is(error(plan(11, 10))?.code, 'file_too_large');
  // Above what 10,000 parts of 5 GiB hold, whatever the configured maximum.
  const beyondS3 = error(plan(LARGEST + 1, Number.MAX_SAFE_INTEGER));
  t.is(beyondS3?.code, 'file_too_large');
  t.regex(beyondS3?.message ?? '', /10000 parts of 5368709120 \(5 GiB\)/);
  // A requested chunk size does not rescue a file that is too large.
  t.is(
    error(() =>
      planChunks({ fileSize: 11, requestedChunkSize: MIN_PART_SIZE, defaultChunkSize: DEFAULT, maxFileSize: 10 }),
    )?.code,
    'file_too_large',
  );

  for (const bad of [-1, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, 2 ** 60]) {
    const err = error(plan(bad, Number.MAX_SAFE_INTEGER));
    t.is(err?.code, 'invalid_request', String(bad));
    t.true(err?.message.includes(`got ${bad}`), err?.message);
  }
});

test('chunkRange and expectedChunkSize refuse indexes outside the plan and plans that do not match the file', (t) => {
  const fileSize = 20 * MiB + 3;
  const plan = planChunks({ fileSize, defaultChunkSize: DEFAULT, maxFileSize: MAX_FILE });
  t.deepEqual(plan, { chunkSize: DEFAULT, totalChunks: 3, lastChunkSize: 4 * MiB + 3 });
  t.deepEqual(chunkRange(plan, fileSize, 1), { start: DEFAULT, end: 2 * DEFAULT - 1, size: DEFAULT });
  t.deepEqual(chunkRange(plan, fileSize, 2), { start: 2 * DEFAULT, end: fileSize - 1, size: 4 * MiB + 3 });
  for (const chunkIndex of [-1, 3, 1.5, Number.NaN]) {
    t.throws(() => expectedChunkSize(plan, fileSize, chunkIndex), {
      instanceOf: RangeError,
      message: /outside 0\.\.2/,
    });
    t.throws(() => chunkRange(plan, fileSize, chunkIndex), { instanceOf: RangeError });
  }
  t.throws(() => expectedChunkSize(plan, fileSize + 1, 0), { instanceOf: RangeError, message: /does not describe/ });
});

test('a misconfigured default or maximum is a server bug (RangeError), not a client error', (t) => {
  for (const defaultChunkSize of [MIN_PART_SIZE - 1, MAX_PART_SIZE + 1, MIN_PART_SIZE + 0.5, Number.NaN]) {
    const err = t.throws(() => planChunks({ fileSize: 1, defaultChunkSize, maxFileSize: MAX_FILE }));
    t.true(err instanceof RangeError && !(err instanceof ChunkPlanError), String(defaultChunkSize));
  }
  t.throws(() => planChunks({ fileSize: 1, defaultChunkSize: DEFAULT, maxFileSize: -1 }), { instanceOf: RangeError });
});
