// Real headless Chromium for the page tests: Debian's /usr/bin/chromium
// driven by playwright-core, in a fresh profile directory with everything
// that would reach the network turned off.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or false when they can. */
export const noChromium: string | false = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does)`;

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A browser with a fresh --user-data-dir, removed on close. */
export async function launchChromium(viewport = { width: 1200, height: 700 }): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'visual-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, viewport });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Where tests keep what a person may want to look at afterwards (screenshots): test-artifacts/ in the repository. */
export function artifactPath(name: string): string {
  const dir = process.env.TSPMC_TEST_ARTIFACTS ?? fileURLToPath(new URL('../../test-artifacts/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}
