import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import test from 'ava';
import type { Worker } from 'playwright-core';
import { s3Configured, startTestServer } from '../helpers/app.ts';
import { chromiumAvailable, launchChromium, registerBrowserUnavailable } from '../helpers/browser.ts';

/**
 * The upload page at `/` driven in headless Chromium: a 32 MB file goes through the SDK's
 * browser bundle straight to the object store (Ceph RGW through CORS when S3_BUCKET is set;
 * otherwise the disk store, whose presigned URLs point at the coordinator), is paused and
 * resumed once, then comes back through the SDK's parallel ranged GETs with the same SHA-256.
 */
const store = s3Configured() ? 's3' : 'disk';
const title = `the page at / uploads a 32 MB file to the ${store} store and downloads it back identical`;

if (!(await chromiumAvailable())) registerBrowserUnavailable(test, title);
else {
  test(title, async (t) => {
    t.timeout(90_000);
    const t0 = Date.now();
    const srv = await startTestServer({ store });
    // Bounded: a store that hangs (e.g. a full Ceph cluster) must fail this test, not stall ava's teardown.
    t.teardown(() => within(20_000, srv.close(), () => t.log('the test server did not close within 20 s')));
    const browser = await launchChromium();
    t.teardown(() => within(10_000, browser.close(), () => t.log('Chromium did not close within 10 s')));
    const { page } = browser;
    const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

    // The chunk PUTs and ranged GETs that went to the store, not the coordinator's API.
    const storeOrigin = store === 's3' ? new URL(process.env.S3_ENDPOINT ?? 'https://s3.amazonaws.com').origin : '';
    const isStore = (url: string) =>
      store === 's3' ? url.startsWith(storeOrigin) : new URL(url).pathname.startsWith('/v1/disk-store/');
    const storeRequests = { PUT: 0, GET: 0 };
    // The SDK's hashing Web Workers (started from a Blob URL embedded in its bundle).
    const workers: Worker[] = [];
    page.on('worker', (w) => workers.push(w));
    page.on('request', (r) => {
      const m = r.method();
      if ((m === 'PUT' || m === 'GET') && isStore(r.url())) storeRequests[m]++;
    });

    const bytes = randomBytes(32 * 1024 * 1024 + 12_345); // 5 chunks of 8 MiB, the last one partial
    const sha256 = createHash('sha256').update(bytes).digest('hex');

    let finished = false;
    try {
      await page.goto(`${srv.url}/?key=${encodeURIComponent(srv.keys.alice)}`);
      await page.waitForSelector('#files:not([disabled])', { timeout: 15_000 });
      t.is(await page.getByLabel('API key').inputValue(), srv.keys.alice, 'the key is taken from ?key=');
      t.false(page.url().includes('key='), 'and removed from the address bar');
      t.log(`page ready after ${elapsed()} (bundle built or loaded on demand)`);

      // A path, not a buffer: Playwright hands Chromium the path instead of sending 32 MB over its protocol.
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-page-'));
      t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
      await fs.writeFile(path.join(dir, 'big.bin'), bytes);
      await page.getByLabel('Files').setInputFiles(path.join(dir, 'big.bin'));
      t.log(`file chosen after ${elapsed()}`);
      const row = page.locator('li.transfer').first();
      // Pause at once (while the SDK hashes, or early in the transfer), check nothing moves, resume.
      await row.getByRole('button', { name: 'Pause' }).click();
      t.is(await row.getAttribute('data-state'), 'paused');
      await page.waitForTimeout(1000);
      const putsWhilePaused = storeRequests.PUT;
      await page.waitForTimeout(1000);
      t.is(storeRequests.PUT, putsWhilePaused, 'no chunk PUT starts while paused');
      t.is(await row.getAttribute('data-state'), 'paused');
      t.is(await row.locator('.state').textContent(), 'Paused.');
      await row.getByRole('button', { name: 'Resume' }).click();
      t.log(`resumed after ${elapsed()}: ${await row.locator('.stats').textContent()}`);

      await page.waitForSelector('li.transfer[data-file-id]', { timeout: 45_000 });
      const fileId = (await row.getAttribute('data-file-id'))!;
      t.log(`uploaded after ${elapsed()}: ${await row.locator('.stats').textContent()}`);
      t.is(await row.getAttribute('data-sha256-up'), sha256, 'the SDK declared the source SHA-256');
      t.true(storeRequests.PUT >= 5, `chunk PUTs went straight to the store (${storeRequests.PUT})`);
      // Pausing ends the workers busy at that moment; those still alive answered the rest.
      const jobs = await Promise.all(
        workers.map((w) =>
          w.evaluate(() => (globalThis as { conveyorHashJobs?: number }).conveyorHashJobs ?? 0).catch(() => 0),
        ),
      );
      t.true(workers.length >= 1 && workers.every((w) => w.url().startsWith('blob:')), 'Web Workers from a Blob URL');
      t.true(
        jobs.reduce((a, b) => a + b, 0) >= 3,
        `chunks were read and hashed in ${workers.length} Web Workers (jobs answered by live ones: ${jobs})`,
      );
      t.regex((await row.locator('.stats').textContent()) ?? '', /5 of 5 chunks sent.*direct/);

      // The object in the store is byte-identical.
      const upload = await srv.app.repos.uploads.get(fileId, 'alice');
      t.is(upload?.status, 'COMPLETED');
      const stored = await readAll((await srv.store.getObject({ key: upload!.objectKey })).body);
      t.true(stored.equals(bytes), 'the stored object is byte-identical');

      // Download & verify: the SDK's parallel ranged GETs into a WritableStream in the page.
      await row.getByRole('button', { name: 'Download & verify' }).click();
      await page.waitForSelector('li.transfer[data-download]:not([data-download="downloading"])', { timeout: 30_000 });
      t.log(`downloaded after ${elapsed()}: ${await row.locator('.stats').textContent()}`);
      t.is(await row.getAttribute('data-download'), 'verified', (await row.locator('.state').textContent()) ?? '');
      t.is(await row.getAttribute('data-sha256-down'), sha256, 'the bytes downloaded in the page hash the same');
      t.true(storeRequests.GET >= 5, `ranged GETs went straight to the store (${storeRequests.GET})`);

      // The "Save file" link hands the browser exactly those bytes.
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        row.getByRole('link', { name: 'Save file' }).click(),
      ]);
      t.is(download.suggestedFilename(), 'big.bin');
      const saved = await fs.readFile(await download.path());
      t.is(createHash('sha256').update(saved).digest('hex'), sha256);

      if (process.env.CONVEYOR_SCREENSHOT)
        await page.screenshot({ path: process.env.CONVEYOR_SCREENSHOT, fullPage: true });
      t.log(`done in ${elapsed()}`);
      finished = true;
    } finally {
      if (!finished || !t.passed || browser.console.some((l) => /error|failed/i.test(l))) {
        t.log(`browser console:\n${browser.console.join('\n') || '(empty)'}`);
        const rows = await page
          .locator('li.transfer')
          .allInnerTexts()
          .catch(() => []);
        t.log(`the page's transfers:\n${rows.join('\n---\n').replace(/\n+/g, ' | ') || '(none)'}`);
      }
    }
  });
}

async function readAll(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of body) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

/** Waits for `p` at most `ms`, then gives up (calling `onLate`) and leaves it running. */
async function within(ms: number, p: Promise<unknown>, onLate: () => void): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      onLate();
      resolve();
    }, ms);
  });
  await Promise.race([p.then(() => undefined), late]).finally(() => clearTimeout(timer));
}
