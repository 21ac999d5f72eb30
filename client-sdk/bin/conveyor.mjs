#!/usr/bin/env node
// The `conveyor` command: runs the TypeScript CLI through tsx's ESM loader (`node --import tsx` style).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli.ts');
process.exitCode = await main(process.argv);
