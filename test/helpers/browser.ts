import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type test from 'ava';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

/** The machine's Chromium (Debian's `chromium` package; `.ci/run` installs it). Browsers are never downloaded. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function chromiumAvailable(): Promise<boolean> {
  return fs.access(CHROMIUM_PATH, fs.constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * Stands in for a file's browser tests when Chromium is not installed (a developer machine
 * without it). It says so in the output, and fails where the browser is required
 * (`.ci/run` sets CONVEYOR_REQUIRE_BROWSER=1), so CI never passes with them unrun.
 */
export function registerBrowserUnavailable(t: typeof test, what: string): void {
  t(`${what}: Chromium not found at ${CHROMIUM_PATH}`, (tt) => {
    if (process.env.CONVEYOR_REQUIRE_BROWSER === '1') {
      tt.fail(`CONVEYOR_REQUIRE_BROWSER=1 but ${CHROMIUM_PATH} is missing (apt-get install chromium)`);
    } else tt.log('the browser test did not run');
    tt.pass();
  });
}

export interface HeadlessBrowser {
  context: BrowserContext;
  page: Page;
  /** What the page printed (console, uncaught errors, failed requests), in order. */
  console: string[];
  close(): Promise<void>;
}

/** Headless Chromium with a fresh profile (no cache, no localStorage from another run). */
export async function launchChromium(): Promise<HeadlessBrowser> {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'conveyor-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const lines: string[] = [];
  page.on('console', (m) => lines.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`[pageerror] ${e.stack ?? e.message}`));
  page.on('requestfailed', (r) =>
    lines.push(`[requestfailed] ${r.method()} ${r.url().split('?')[0]}: ${r.failure()?.errorText}`),
  );
  return {
    context,
    page,
    console: lines,
    close: async () => {
      await context.close().catch(() => {});
      await fs.rm(profile, { recursive: true, force: true });
    },
  };
}
