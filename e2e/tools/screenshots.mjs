// `npm run screenshots`: full-page screenshots of the landing page into docs/
// (`-- --viewport` for first-screen only). Uses CALLWAY_BASE_URL when set, else the test-only
// static server from e2e/helpers.mjs.
import { join } from 'node:path';
import { launchBrowser, ROOT, siteUnderTest } from '../helpers.mjs';

const SHOTS = [
  { file: 'docs/screenshot-desktop.png', viewport: { width: 1440, height: 900 }, isMobile: false, deviceScaleFactor: 1 },
  { file: 'docs/screenshot-mobile.png', viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 },
];
const fullPage = !process.argv.includes('--viewport');

const site = await siteUnderTest();
const launched = await launchBrowser();
try {
  for (const shot of SHOTS) {
    const ctx = await launched.browser.newContext({
      viewport: shot.viewport, isMobile: shot.isMobile, hasTouch: shot.isMobile,
      deviceScaleFactor: shot.deviceScaleFactor, reducedMotion: 'reduce', locale: 'fr-FR',
    });
    const page = await ctx.newPage();
    await page.goto(site.url, { waitUntil: 'networkidle' });
    await page.evaluate(() => document.fonts.ready);
    await page.screenshot({ path: join(ROOT, shot.file), fullPage });
    console.log(`wrote ${shot.file}`);
    await ctx.close();
  }
} finally {
  await launched.close();
  await site.close();
}
