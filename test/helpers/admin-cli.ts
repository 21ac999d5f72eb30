import { spawn } from 'node:child_process';
import type { TestServer } from './app.ts';

/**
 * Runs `npm run admin -- …` (server/admin.ts) against a test server's database, as an operator
 * would; `env` adds variables (e.g. the server's QUOTA_MAX_* defaults).
 */
export function runAdmin(
  srv: TestServer,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/admin.ts', ...args], {
      env: { ...process.env, DATABASE_URL: srv.tdb.url, DATA_DIR: srv.config.dataDir, LOG_LEVEL: 'silent', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
