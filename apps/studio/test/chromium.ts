import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (`apt-get install chromium`): Playwright's own download cannot run here. */
export const CHROMIUM = process.env.DELTATUNE_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Whether the browser tests run: with Chromium installed, or failing instead of skipping when
 * DELTATUNE_REQUIRE_BROWSER=1 (CI installs it, so a lost install cannot turn the tests green).
 */
export const HAVE_CHROMIUM = existsSync(CHROMIUM) || process.env.DELTATUNE_REQUIRE_BROWSER === '1';

// Without the background-networking flags Chromium keeps dialling Google's hosts, which this
// offline machine refuses; --disable-gpu: the machine has none (wasm is what is tested).
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Headless Chromium with a fresh profile (a new --user-data-dir), downloads accepted. */
export async function launchChromium(): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), 'deltatune-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    acceptDownloads: true,
    viewport: { width: 1200, height: 900 },
  });
}
