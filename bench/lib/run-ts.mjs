// Runs a TypeScript script the way client-sdk/bin/conveyor.mjs runs the CLI (tsx's in-thread
// CommonJS hook, no ESM loader thread), so that its memory compares with the CLI's:
//   node bench/lib/run-ts.mjs <script.ts> [args…]   (the script exports `main(argv): Promise<number>`)
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
require('tsx/cjs/api').register();
const [, , script, ...rest] = process.argv;
const { main } = require(path.resolve(script));
process.exitCode = await main(rest);
