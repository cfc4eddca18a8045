// Page-level browser tests: the landing page itself and the voice button's failure paths.
// Runs against CALLWAY_BASE_URL when set, else against the test-only static server (helpers.mjs).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { countPeerConnections, launchBrowser, SESSION_FAILURE, siteUnderTest, waitFor, watchPage } from './helpers.mjs';

const PAGE_WEIGHT_BUDGET = 100 * 1024;

describe('landing page', () => {
  let site;
  let browser;
  before(async () => {
    site = await siteUnderTest();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
  });

  test('loads with no console error and no failed request', async () => {
    const page = await browser.context.newPage();
    const problems = watchPage(page);
    await page.goto(site.url, { waitUntil: 'networkidle' });
    assert.equal(await page.locator('html').getAttribute('lang'), 'fr');
    assert.match(await page.title(), /Callway/);
    for (const id of ['btn-voice', 'audio-wave', 'voice-status', 'captions', 'btn-stop', 'phone-leg']) {
      assert.equal(await page.locator(`#${id}`).count(), 1, `#${id} exists`);
    }
    assert.equal(await page.locator('#phone-leg').isVisible(), false, '#phone-leg hidden by default');
    assert.equal(await page.locator('#voice-status').getAttribute('aria-live'), 'polite');
    assert.equal(await page.locator('#btn-voice').evaluate((b) => b.tagName), 'BUTTON');
    assert.equal(await page.locator('#btn-voice').getAttribute('data-state'), 'idle');
    assert.equal(await page.locator('#btn-voice').getAttribute('aria-pressed'), 'false');
    assert.ok(await page.locator('#audio-wave .wave-bar').count() >= 8, 'wave has bars');
    assert.equal(await page.evaluate(() => window.callwayDebug && window.callwayDebug.pc), null);
    // Privacy notice content (RGPD)
    const privacy = await page.locator('#confidentialite').innerText();
    for (const word of ['prénom', 'numéro', 'consentement', 'résumé', '30', 'suppression']) {
      assert.ok(privacy.toLowerCase().includes(word), `privacy notice mentions "${word}"`);
    }
    // No absolute asset paths, no inline handlers or styles (CSP default-src 'self')
    const html = await page.content();
    assert.doesNotMatch(html, /(src|href)="\/(?!\/)/, 'no root-absolute asset path');
    assert.doesNotMatch(html, /\sstyle="/, 'no inline style attribute');
    assert.doesNotMatch(html, /\son[a-z]+="/, 'no inline event handler');
    assert.deepEqual(problems, []);
    await page.close();
  });

  test(`page weight before any click is at most ${PAGE_WEIGHT_BUDGET / 1024} KB`, async () => {
    const page = await browser.context.newPage();
    const cdp = await browser.context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    const sizes = new Map();
    const urls = new Map();
    cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
    cdp.on('Network.loadingFinished', (e) => sizes.set(e.requestId, e.encodedDataLength));
    await page.goto(site.url, { waitUntil: 'networkidle' });
    await page.waitForTimeout(300);
    const total = [...sizes.values()].reduce((a, b) => a + b, 0);
    const detail = [...sizes].map(([id, n]) => `${n}\t${urls.get(id)}`).join('\n');
    console.log(`page weight: ${total} bytes transferred over ${sizes.size} requests\n${detail}`);
    assert.ok(sizes.size >= 4, 'html, css and scripts were counted');
    assert.ok(total <= PAGE_WEIGHT_BUDGET, `page weight ${total} B > ${PAGE_WEIGHT_BUDGET} B`);
    await page.close();
  });

  test('voice button is reachable with Tab and activates with Enter and Space', async () => {
    const page = await browser.context.newPage();
    let sessionCalls = 0;
    // Answer the session request here so the test behaves the same against any backend.
    await page.route('**/api/realtime/session', (route) => {
      sessionCalls += 1;
      return route.fulfill({ status: SESSION_FAILURE.status, contentType: 'application/json', body: JSON.stringify(SESSION_FAILURE.body) });
    });
    await page.goto(site.url, { waitUntil: 'networkidle' });
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement && document.activeElement.id === 'btn-voice');
    }
    assert.ok(reached, '#btn-voice reached with Tab');
    const visibleFocus = await page.evaluate(() => document.activeElement.matches(':focus-visible'));
    assert.ok(visibleFocus, 'focus is visible on the voice button');

    await page.keyboard.press('Enter');
    await waitFor(() => sessionCalls === 1, { message: 'session request after Enter' });
    await waitFor(async () => (await page.locator('#btn-voice').getAttribute('data-state')) === 'error', { message: 'error state' });

    await page.keyboard.press('Space');
    await waitFor(() => sessionCalls === 2, { message: 'session request after Space' });
    await page.close();
  });

  test('session refused (demo busy): French message, peer connection closed, microphone released', async () => {
    const page = await browser.context.newPage();
    await countPeerConnections(page);
    if (site.external) {
      await page.route('**/api/realtime/session', (route) => route.fulfill({
        status: SESSION_FAILURE.status, contentType: 'application/json', body: JSON.stringify(SESSION_FAILURE.body),
      }));
    }
    await page.goto(site.url, { waitUntil: 'networkidle' });
    await page.click('#btn-voice');
    const status = page.locator('#voice-status');
    await waitFor(async () => (await status.textContent()) === SESSION_FAILURE.shown, { message: 'demo-busy message shown' });
    assert.equal(await page.locator('#btn-voice').getAttribute('data-state'), 'error');
    assert.equal(await page.locator('#btn-voice').getAttribute('aria-pressed'), 'false');
    // The offer was made (one peer connection), then everything was closed again.
    assert.equal(await page.evaluate(() => window.__peerConnections), 1);
    assert.ok(await page.evaluate(() => {
      const pc = window.callwayDebug.pc;
      return pc.signalingState === 'closed' && pc.getSenders().every((s) => !s.track || s.track.readyState === 'ended');
    }), 'peer connection closed and microphone track stopped');
    const asked = await page.evaluate(() => window.callwayDebug.requests().map((u) => new URL(u).pathname));
    assert.deepEqual(asked, ['/api/realtime/session'], 'the page asked only our server');
    await page.close();
  });

  test('session answer without the documented fields: no SDP applied, French message', async () => {
    const page = await browser.context.newPage();
    await page.route('**/api/realtime/session', (route) => route.fulfill({
      status: 201, contentType: 'application/json', body: JSON.stringify({ sdp: 'v=0\r\n', expires_at: 1 }),
    }));
    await page.goto(site.url, { waitUntil: 'networkidle' });
    await page.click('#btn-voice');
    await waitFor(async () => /connexion au service vocal a échoué/.test(await page.locator('#voice-status').textContent()), { message: 'failure message' });
    assert.equal(await page.locator('#btn-voice').getAttribute('data-state'), 'error');
    assert.equal(await page.evaluate(() => window.callwayDebug.pc.currentRemoteDescription), null, 'no answer applied');
    await page.close();
  });

  test('rate-limited without a message: French fallback text', async () => {
    const page = await browser.context.newPage();
    await page.route('**/api/realtime/session', (route) => route.fulfill({ status: 429, contentType: 'application/json', body: '{"error":{"code":"slow_down"}}' }));
    await page.goto(site.url, { waitUntil: 'networkidle' });
    await page.click('#btn-voice');
    await waitFor(async () => /Trop de tentatives/.test(await page.locator('#voice-status').textContent()), { message: 'rate-limit message' });
    await page.close();
  });
});

describe('microphone refused', () => {
  let site;
  let browser;
  before(async () => {
    site = await siteUnderTest();
    // No --use-fake-ui-for-media-stream: the permission prompt is answered by the context (denied).
    browser = await launchBrowser({ fakeUi: false });
    await browser.context.clearPermissions();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
  });

  test('message shown, no session requested, no RTCPeerConnection created', async () => {
    const page = await browser.context.newPage();
    await countPeerConnections(page);
    let sessionCalls = 0;
    page.on('request', (r) => { if (r.url().includes('api/realtime/session')) sessionCalls += 1; });
    await page.goto(site.url, { waitUntil: 'networkidle' });
    await page.click('#btn-voice');
    await waitFor(async () => /micro refusé/.test(await page.locator('#voice-status').textContent()), { message: 'mic refused message' });
    assert.equal(await page.locator('#btn-voice').getAttribute('data-state'), 'error');
    assert.equal(await page.evaluate(() => window.callwayDebug.pc), null);
    assert.equal(await page.evaluate(() => window.__peerConnections), 0);
    assert.equal(sessionCalls, 0);
    await page.close();
  });
});

describe('no microphone', () => {
  let site;
  let browser;
  before(async () => {
    site = await siteUnderTest();
    browser = await launchBrowser({ fakeUi: true, fakeDevice: false }); // the machine has no audio input
  });
  after(async () => {
    await browser?.close();
    await site?.close();
  });

  test('"no microphone" message, no RTCPeerConnection', async (t) => {
    const page = await browser.context.newPage();
    await countPeerConnections(page);
    await page.goto(site.url, { waitUntil: 'networkidle' });
    const inputs = await page.evaluate(async () => (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'audioinput').length);
    if (inputs > 0) {
      t.skip('this machine has a real audio input');
      return;
    }
    await page.click('#btn-voice');
    await waitFor(async () => /Aucun micro/.test(await page.locator('#voice-status').textContent()), { message: 'no-mic message' });
    assert.equal(await page.evaluate(() => window.__peerConnections), 0);
    await page.close();
  });
});
