#!/usr/bin/env node
// The `conveyor` command: runs the TypeScript CLI through tsx.
//
// tsx's in-thread CommonJS hook, not its ESM loader (`node --import tsx`): Node runs ESM loader
// hooks on a thread of their own with a second V8 isolate, about 25 MiB of resident memory for
// the whole run (bench/sdk-memory.ts measures it). The CLI's modules use no top-level await and
// no import.meta, so they load as CommonJS just as well.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
require('tsx/cjs/api').register();
const { main } = require('../cli.ts');
process.exitCode = await main(process.argv);
