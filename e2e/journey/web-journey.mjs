// Drives one visitor through the web leg in Chromium against a running site, and prints one JSON
// line describing what the visitor saw and heard. The Rust test that starts the site (with the
// simulators and a real database) runs this script and checks the other side of every exchange.
//
// Usage: node e2e/journey/web-journey.mjs <base-url> [timeout-ms]
import { launchBrowser, watchPage, waitFor } from '../helpers.mjs';

const base = process.argv[2];
const timeout = Number(process.argv[3] || 90000);
if (!base) {
  console.error('usage: web-journey.mjs <base-url> [timeout-ms]');
  process.exit(2);
}

// The fake microphone loops this file: a short "utterance" then a pause long enough for the
// agent's answer, so each loop is one visitor turn.
const session = await launchBrowser({ wav: { toneSec: 0.8, silenceSec: 5.5, freq: 300, amp: 0.5 } });
const result = { states: [], maxRemoteLevel: 0, captions: '', phoneLeg: '', problems: [], closedCleanly: false, error: null };
try {
  const page = await session.context.newPage();
  const problems = watchPage(page);
  await page.goto(base);
  await page.locator('#btn-voice').click();
  const started = Date.now();
  let last = '';
  await waitFor(async () => {
    const state = await page.locator('#btn-voice').getAttribute('data-state');
    if (state !== last) {
      result.states.push(state);
      last = state;
    }
    const level = await page.evaluate(() => window.callwayDebug?.remoteLevel?.() ?? 0);
    result.maxRemoteLevel = Math.max(result.maxRemoteLevel, level);
    return await page.locator('#phone-leg').isVisible();
  }, { timeout, interval: 100, message: 'the phone-leg panel after trigger_call' });
  result.elapsedMs = Date.now() - started;
  result.phoneLeg = (await page.locator('#phone-leg').textContent()).replace(/\s+/g, ' ').trim();
  result.captions = (await page.locator('#captions').textContent()).replace(/\s+/g, ' ').trim();
  // The phone leg (simulated callee in the sandbox) shows up in the panel's timeline.
  if (process.env.JOURNEY_WAIT_PHONE_END) {
    await waitFor(async () => /Appel terminé|Pas de réponse|Ligne occupée|n'a pas abouti/.test(await page.locator('#phone-leg').textContent()),
      { timeout: Number(process.env.JOURNEY_WAIT_PHONE_END), interval: 200, message: 'the end of the phone leg in the panel' });
    result.phoneLeg = (await page.locator('#phone-leg').textContent()).replace(/\s+/g, ' ').trim();
  }
  await waitFor(async () => page.evaluate(() => {
    const pc = window.callwayDebug?.pc;
    return pc && (pc.connectionState === 'closed' || pc.signalingState === 'closed');
  }), { timeout: 20000, message: 'the peer connection closed after the handoff' });
  result.closedCleanly = true;
  result.problems = problems;
} catch (e) {
  result.error = String(e?.message || e);
} finally {
  await session.close();
}
console.log(JSON.stringify(result));
