import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { build } from 'esbuild';
import { startTestServer } from '../helpers/app.ts';

/**
 * The esbuild browser bundle (fetch transport, hash-wasm, Blob source, WritableStream sink) run
 * in Node, whose fetch, Blob and web streams are the browser's APIs: the shared code path that
 * the browser page will use, against the real coordinator. (The Chromium test is a separate task.)
 */
test('the browser bundle uploads a Blob and downloads it into a WritableStream', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-bundle-'));
  const srv = await startTestServer({ store: 'disk' });
  t.teardown(async () => {
    await srv.close();
    await fs.rm(dir, { recursive: true, force: true });
  });
  const outfile = path.join(dir, 'conveyor.browser.js');
  const result = await build({
    entryPoints: ['client-sdk/browser.ts'],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile,
    metafile: true,
  });
  const inputs = Object.keys(result.metafile.inputs);
  t.false(
    inputs.some((i) => /node-|cli\.ts/.test(i)),
    'no Node-only module in the bundle',
  );
  const sdk = await import(pathToFileURL(outfile).href);
  const bytes = randomBytes(11 * 1024 * 1024 + 3);
  const sha = createHash('sha256').update(bytes).digest('base64');
  const client = new sdk.ConveyorClient({ baseUrl: srv.url, apiKey: srv.keys.alice });
  const up = await client.upload(new Blob([bytes]), { chunkSize: 5 * 1024 * 1024, fileName: 'b.bin' });
  t.like(up, { sha256: sha, chunksSent: 3, transport: 'direct' });
  const hash = createHash('sha256');
  const sink = new WritableStream<Uint8Array>({ write: (c) => void hash.update(c) });
  const down = await client.download(up.fileId, sink);
  t.true(down.verified);
  t.is(hash.digest('base64'), sha);
});
