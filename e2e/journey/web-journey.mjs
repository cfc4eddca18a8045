// Drives one visitor through the web leg in Chromium against a running site, and prints one JSON
// line describing what the visitor saw and heard. The Rust test that starts the site (with the
// simulators and a real database) runs this script and checks the other side of every exchange.
//
// Usage: node e2e/journey/web-journey.mjs <base-url> [timeout-ms]
//
// Output fields:
//   states          every data-state of the voice button, in order (connecting, listening, …)
//   maxRemoteLevel  the loudest level of the agent's audio heard in the page (0..1)
//   captions        the captions' text when the phone-leg panel showed
//   phoneLeg        the phone-leg panel's text (at the end of the phone leg if JOURNEY_WAIT_PHONE_END)
//   requests        every URL the page requested, deduplicated in first-seen order: the path for
//                   the site's own origin ("/api/realtime/session"), origin + path for any other
//                   host (so a request to OpenAI or to a tool URL would show here); no query strings
//   muted           whether every microphone track was disabled when the phone-leg panel showed
//   micMutedAt      ms after the click when the page was first seen muted (polled every 100 ms), or null
//   phoneLegAt      ms after the click when the phone-leg panel showed
//   elapsedMs       same as phoneLegAt (kept for older readers)
//   problems        console errors, page errors, failed requests, HTTP errors
//   closedCleanly   the peer connection was closed after the hand-off
//   error           why the journey stopped early, or null
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
const result = {
  states: [], maxRemoteLevel: 0, captions: '', phoneLeg: '', requests: [], muted: false, micMutedAt: null,
  phoneLegAt: null, problems: [], closedCleanly: false, error: null,
};
const requests = new Set();
try {
  const page = await session.context.newPage();
  const problems = watchPage(page);
  const origin = new URL(base).origin;
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return;
    requests.add(u.origin === origin ? u.pathname : `${u.origin}${u.pathname}`);
  });
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
    const probe = await page.evaluate(() => ({
      level: window.callwayDebug?.remoteLevel?.() ?? 0,
      muted: window.callwayDebug?.micMuted?.() ?? false,
    }));
    result.maxRemoteLevel = Math.max(result.maxRemoteLevel, probe.level);
    if (probe.muted && result.micMutedAt === null) result.micMutedAt = Date.now() - started;
    return await page.locator('#phone-leg').isVisible();
  }, { timeout, interval: 100, message: 'the phone-leg panel after trigger_call' });
  result.phoneLegAt = Date.now() - started;
  result.elapsedMs = result.phoneLegAt;
  result.muted = await page.evaluate(() => window.callwayDebug.micMuted());
  if (result.muted && result.micMutedAt === null) result.micMutedAt = result.phoneLegAt;
  result.phoneLeg = (await page.locator('#phone-leg').textContent()).replace(/\s+/g, ' ').trim();
  result.captions = (await page.locator('#captions').textContent()).replace(/\s+/g, ' ').trim();
  // The phone leg (simulated callee in the sandbox) shows up in the panel's timeline, ending with
  // its final line.
  if (process.env.JOURNEY_WAIT_PHONE_END) {
    await waitFor(async () => (await page.locator('#phone-leg-timeline .leg-final').count()) > 0,
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
  result.requests = [...requests];
  await session.close();
}
console.log(JSON.stringify(result));
