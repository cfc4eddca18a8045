// Client-logic tests of the voice demo (public/assets/js) against scripted fakes:
// - our backend routes (POST/GET api/realtime/session, GET api/calls/{id}/events) are answered by
//   Playwright route handlers; the POST relays the page's SDP offer to the fake peer, as our server
//   relays it to OpenAI;
// - the Realtime WebRTC endpoint is a second Chromium page (fake-peer.mjs); its data channel carries
//   the events the server's sideband would also see (GA names).
// The full journey against the real Rust services and simulators is tests/browser_journey.rs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, siteUnderTest, waitFor, watchPage } from './helpers.mjs';
import { openFakePeer } from './fake-peer.mjs';

const PHONE_MASKED = '+33 6 •• •• •• 78';
const SESSION_TOKEN = 'st_test_session';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const CALL_ID = 'cx_test_1';
const ACTIVE = { state: 'active', reason: null, call_id: null, phone_masked: null };
const ended = (reason, extra = {}) => ({ state: 'ended', reason, call_id: null, phone_masked: null, ...extra });
const HANDOFF = ended('handoff', { call_id: CALL_ID, phone_masked: PHONE_MASKED });

// What the visitor reads (public/assets/js/messages.js), spelled out so a changed text fails here.
const TEXT = {
  offerRefused: "Votre navigateur n'a pas pu préparer la liaison audio. Rechargez la page, puis réessayez.",
  rateLimited: 'Trop de tentatives en peu de temps. Patientez une minute, puis réessayez.',
  networkRateLimited: 'Trop de conversations démarrées depuis votre réseau. Réessayez dans quelques minutes.',
  demoBusy: 'La démo est très demandée, réessayez dans un instant.',
  upstreamBusy: 'Le service vocal est saturé. Réessayez dans quelques minutes.',
  upstreamTimeout: 'Le service vocal met trop de temps à répondre. Réessayez dans un instant.',
  upstreamDown: 'Le service vocal est momentanément indisponible. Réessayez dans quelques instants.',
  network: 'Le service est injoignable. Vérifiez votre connexion internet, puis réessayez.',
  sdpFailed: 'La connexion au service vocal a échoué. Réessayez dans un instant.',
  connectionLost: "La connexion avec l'agent a été perdue. Touchez le micro pour relancer la conversation.",
  controlLost: "La conversation n'a pas pu être poursuivie. Touchez le micro pour réessayer.",
  sessionExpired: 'Votre session a expiré. Touchez le micro pour en démarrer une nouvelle.',
  goodbye: "L'agent termine la conversation…",
  handoff: "C'est parti : votre téléphone va sonner.",
};

let site;
let launched;
before(async () => {
  site = await siteUnderTest();
  launched = await launchBrowser({
    args: ['--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
});
after(async () => {
  await launched?.close();
  await site?.close();
});

const at = (s) => new Date(Date.UTC(2026, 0, 10, 9, 0, s)).toISOString();
const DEFAULT_TIMELINE = {
  events: [{ at: at(0), kind: 'dialing' }, { at: at(2), kind: 'ringing' }, { at: at(5), kind: 'answered' },
    { at: at(6), kind: 'agent', text: 'Bonjour Marie' }, { at: at(20), kind: 'ended', text: 'completed' }],
  ended: true,
};

/**
 * One visitor session in a fresh browser context. `refuse` answers the POST instead of the peer
 * ({status, body} or {abort: true}); `report` is what GET api/realtime/session says (mutable through
 * s.report); `timeline(n)` is the n-th answer of the phone-leg timeline (may return a promise).
 */
async function startSession({ refuse = null, report = ACTIVE, maxSecs = 300, timeline = () => DEFAULT_TIMELINE, clock = false, shared = null } = {}) {
  // `shared`: a context kept by the caller (refusal cases need no peer and no context of their own).
  const context = shared || await launched.browser.newContext({ locale: 'fr-FR' });
  if (clock) await context.clock.install(); // time flows naturally until a test pauses it
  const page = await context.newPage();
  const problems = watchPage(page);
  const peer = refuse ? null : await openFakePeer(context);
  const log = { offers: [], status: [], timeline: [], urls: [] };
  page.on('request', (r) => log.urls.push({ method: r.method(), url: r.url() }));
  const s = {
    context, page, peer, log, problems, report,
    state: () => page.evaluate(() => window.callwayDebug.state),
    status: () => page.locator('#voice-status').textContent(),
    sent: async (type) => (await peer.received()).filter((e) => !type || e.type === type),
    micMuted: () => page.evaluate(() => window.callwayDebug.micMuted()),
    close: () => (shared ? page.close() : context.close()),
  };
  await page.route('**/api/realtime/session', async (route) => {
    const req = route.request();
    if (req.method() === 'POST') {
      log.offers.push({ headers: await req.allHeaders(), body: req.postData() });
      if (refuse && refuse.abort) return route.abort('connectionrefused');
      if (refuse) {
        const body = typeof refuse.body === 'string' ? refuse.body : JSON.stringify(refuse.body);
        return route.fulfill({ status: refuse.status, contentType: refuse.contentType || 'application/json', headers: refuse.headers || {}, body });
      }
      const sdp = await peer.answer(req.postData());
      return route.fulfill({
        status: 201,
        contentType: 'application/json',
        headers: { 'Cache-Control': 'no-store' },
        body: JSON.stringify({ sdp, session_token: SESSION_TOKEN, expires_at: Math.floor(Date.now() / 1000) + 600, max_session_secs: maxSecs, traceparent: TRACEPARENT }),
      });
    }
    log.status.push({ method: req.method(), headers: await req.allHeaders() });
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(s.report) });
  });
  await page.route('**/api/calls/*/events', async (route) => {
    const req = route.request();
    const n = log.timeline.length;
    log.timeline.push({ url: req.url(), headers: await req.allHeaders() });
    const body = await timeline(n);
    await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  });
  await page.goto(site.url); // "load": the module scripts ran, the button is wired
  await page.click('#btn-voice');
  return s;
}

async function connected(s) {
  await waitFor(() => s.peer.dcState().then((st) => st === 'open'), { message: 'data channel open' });
  await waitFor(() => s.state().then((st) => st === 'listening'), { message: 'listening state' });
}

// trigger_call's output as the server's sideband adds it to the conversation (the page sees it on
// its data channel, as conversation.item.added then conversation.item.done).
function callingOutput(callId = CALL_ID) {
  const item = {
    id: 'item_out_trig', type: 'function_call_output', call_id: 'call_trig',
    output: JSON.stringify({ status: 'calling', call_id: callId, phone_masked: PHONE_MASKED, message: 'Je vous appelle tout de suite.' }),
  };
  return [
    { type: 'conversation.item.added', event_id: 'out_1', previous_item_id: 'item_f2', item },
    { type: 'conversation.item.done', event_id: 'out_2', previous_item_id: 'item_f2', item },
  ];
}

const allClosed = (page) => page.evaluate(() => {
  const pc = window.callwayDebug.pc;
  return !!pc && pc.connectionState === 'closed' && pc.signalingState === 'closed'
    && pc.getSenders().every((snd) => !snd.track || snd.track.readyState === 'ended');
});

const legLines = (page) => page.locator('#phone-leg-timeline li').allInnerTexts()
  .then((lines) => lines.map((l) => l.replace(/^\d\d:\d\d:\d\d · /, '')));

// The page talked only to our own API: no tool URL, no OpenAI (or any other) host.
function assertOnlyOurApi(s) {
  const origin = new URL(site.url).origin;
  for (const { url } of s.log.urls) {
    const u = new URL(url);
    if (u.protocol === 'data:' || u.protocol === 'blob:') continue;
    assert.equal(u.origin, origin, `request to another host: ${url}`);
    assert.doesNotMatch(u.pathname, /\/api\/tools\//, `tool request from the page: ${url}`);
    assert.doesNotMatch(u.pathname, /realtime-token|\/v1\//, `old token or OpenAI path: ${url}`);
  }
}

describe('voice client against a scripted Realtime peer', () => {
  test('full conversation: offer to our server, captions, states, no tool run, mic muted at the call, phone leg', async () => {
    const s = await startSession();
    try {
      await connected(s);

      // The SDP offer went to our server, with no credential of any kind.
      assert.equal(s.log.offers.length, 1);
      const offer = s.log.offers[0];
      assert.match(offer.headers['content-type'], /^application\/sdp/);
      assert.equal(offer.headers.authorization, undefined);
      assert.match(offer.body, /^v=0/);
      assert.match(offer.body, /m=audio /);
      assert.match(offer.body, /m=application .*webrtc-datachannel/, 'data channel created before the offer');
      assert.match(offer.body, /a=candidate:/, 'gathered candidates are in the offer');

      // The fake microphone (a 440 Hz tone in the WAV) is measured from the real stream.
      await waitFor(() => s.page.evaluate(() => window.callwayDebug.micLevel() > 0.01), { message: 'microphone level' });
      assert.equal(await s.micMuted(), false);

      // session.created → one response.create for the greeting.
      await s.peer.send({ type: 'session.created', event_id: 'event_1', session: { type: 'realtime', id: 'sess_1' } });
      await waitFor(async () => (await s.sent('response.create')).length === 1, { message: 'greeting response.create' });

      // The agent speaks: state, status, captions, real remote level.
      await s.peer.send(
        { type: 'response.created', event_id: 'event_2', response: { id: 'resp_1', status: 'in_progress' } },
        { type: 'output_audio_buffer.started', event_id: 'event_3', response_id: 'resp_1' },
        { type: 'response.output_audio_transcript.delta', event_id: 'event_4', response_id: 'resp_1', item_id: 'item_a1', output_index: 0, content_index: 0, delta: 'Bonjour, je suis ' },
        { type: 'response.output_audio_transcript.delta', event_id: 'event_5', response_id: 'resp_1', item_id: 'item_a1', output_index: 0, content_index: 0, delta: "l'agent Callway." },
      );
      await s.peer.speak(true);
      await waitFor(() => s.state().then((st) => st === 'speaking'), { message: 'speaking state' });
      assert.equal(await s.status(), "L'agent parle…");
      assert.equal(await s.page.locator('#btn-voice').getAttribute('aria-pressed'), 'true');
      await waitFor(() => s.page.evaluate(() => window.callwayDebug.remoteLevel() > 0.02), { message: 'remote audio level' });
      await waitFor(async () => (await s.page.locator('#captions').innerText()).includes("Bonjour, je suis l'agent Callway."), { message: 'agent caption' });
      await s.page.bringToFront(); // animation frames only run in the visible tab
      await waitFor(() => s.page.evaluate(() => [...document.querySelectorAll('#audio-wave .wave-bar')]
        .some((b) => /scaleY\((0\.[2-9]|1)/.test(b.style.transform))), { message: 'wave bars follow the remote level' });
      await s.peer.speak(false);
      await s.peer.send(
        { type: 'response.output_audio_transcript.done', event_id: 'event_6', response_id: 'resp_1', item_id: 'item_a1', output_index: 0, content_index: 0, transcript: "Bonjour, je suis l'agent Callway. Que puis-je pour vous ?" },
        { type: 'response.done', event_id: 'event_7', response: { id: 'resp_1', status: 'completed', output: [] } },
        { type: 'output_audio_buffer.stopped', event_id: 'event_8', response_id: 'resp_1' },
      );
      await waitFor(() => s.state().then((st) => st === 'listening'), { message: 'back to listening' });

      // The visitor speaks; the transcript arrives later but keeps its place.
      await s.peer.send({ type: 'input_audio_buffer.speech_started', event_id: 'event_9', audio_start_ms: 1000, item_id: 'item_u1' });
      await waitFor(async () => (await s.status()) === 'Je vous écoute…', { message: 'listening status' });
      await s.peer.send(
        { type: 'input_audio_buffer.speech_stopped', event_id: 'event_10', audio_end_ms: 2500, item_id: 'item_u1' },
        { type: 'conversation.item.input_audio_transcription.completed', event_id: 'event_11', item_id: 'item_u1', content_index: 0, transcript: 'Oui, rappelez-moi.' },
      );
      await waitFor(async () => (await s.page.locator('#captions .caption-user').innerText()).includes('Oui, rappelez-moi.'), { message: 'visitor caption' });

      // The model calls save_lead: the page says so, and leaves the call to the server.
      const saveArgs = '{"first_name":"Marie","last_name":"Dupont","phone":"06 12 34 56 78","consent":true}';
      const save = { id: 'item_f1', type: 'function_call', status: 'completed', name: 'save_lead', call_id: 'call_save_1', arguments: saveArgs };
      await s.peer.send(
        { type: 'response.created', event_id: 'event_12', response: { id: 'resp_2', status: 'in_progress' } },
        { type: 'response.function_call_arguments.done', event_id: 'event_13', response_id: 'resp_2', item_id: 'item_f1', output_index: 0, call_id: 'call_save_1', name: 'save_lead', arguments: saveArgs },
        { type: 'response.output_item.done', event_id: 'event_14', response_id: 'resp_2', output_index: 0, item: save },
        { type: 'response.done', event_id: 'event_15', response: { id: 'resp_2', status: 'completed', output: [save] } },
      );
      await waitFor(async () => (await s.status()) === 'Enregistrement de vos coordonnées…', { message: 'saving status' });
      assert.equal(await s.state(), 'listening');
      // The server's output for save_lead (seen on the channel) is not a hand-off.
      const saved = { id: 'item_out_save', type: 'function_call_output', call_id: 'call_save_1', output: '{"lead_id":"lead_123","phone_e164":"+33612345678"}' };
      await s.peer.send(
        { type: 'conversation.item.added', event_id: 'event_16', previous_item_id: 'item_f1', item: saved },
        { type: 'conversation.item.done', event_id: 'event_17', previous_item_id: 'item_f1', item: saved },
        { type: 'response.created', event_id: 'event_18', response: { id: 'resp_3', status: 'in_progress' } },
        { type: 'response.output_audio_transcript.done', event_id: 'event_19', response_id: 'resp_3', item_id: 'item_a3', output_index: 0, content_index: 0, transcript: "C'est noté. Je vous appelle ?" },
        { type: 'response.done', event_id: 'event_20', response: { id: 'resp_3', status: 'completed', output: [] } },
      );
      await waitFor(async () => (await s.status()) === 'Je vous écoute…', { message: 'listening again after save_lead' });
      assert.equal(await s.micMuted(), false, 'a save_lead output does not mute the microphone');

      // trigger_call: "placing the call", then its output → the microphone is muted at once,
      // while the web call is still up (the server hangs up only after the goodbye).
      const trig = { id: 'item_f2', type: 'function_call', status: 'completed', name: 'trigger_call', call_id: 'call_trig', arguments: '{"lead_id":"lead_123","summary":"Souhaite un rappel."}' };
      await s.peer.send(
        { type: 'response.created', event_id: 'event_21', response: { id: 'resp_4', status: 'in_progress' } },
        { type: 'response.function_call_arguments.done', event_id: 'event_22', response_id: 'resp_4', item_id: 'item_f2', output_index: 0, call_id: 'call_trig', name: 'trigger_call', arguments: trig.arguments },
        { type: 'response.done', event_id: 'event_23', response: { id: 'resp_4', status: 'completed', output: [trig] } },
      );
      await waitFor(async () => (await s.status()) === "Préparation de l'appel…", { message: 'placing-call status' });
      await s.peer.send(...callingOutput());
      await waitFor(() => s.micMuted(), { message: 'microphone muted after the trigger_call output' });
      assert.equal(await s.status(), TEXT.goodbye);
      assert.equal(await s.peer.dcState(), 'open', 'muted before the web call ends');
      assert.ok(await s.page.evaluate(() => window.callwayDebug.pc.getSenders().every((snd) => !snd.track || !snd.track.enabled)),
        'the track sent to the agent is disabled');

      // The goodbye, then the server hangs the web call up.
      await s.peer.send(
        { type: 'response.created', event_id: 'event_24', response: { id: 'resp_5', status: 'in_progress' } },
        { type: 'output_audio_buffer.started', event_id: 'event_25', response_id: 'resp_5' },
        { type: 'response.output_audio_transcript.done', event_id: 'event_26', response_id: 'resp_5', item_id: 'item_a5', output_index: 0, content_index: 0, transcript: 'Parfait, je vous appelle tout de suite. À tout de suite !' },
        { type: 'response.done', event_id: 'event_27', response: { id: 'resp_5', status: 'completed', output: [] } },
        { type: 'output_audio_buffer.stopped', event_id: 'event_28', response_id: 'resp_5' },
      );
      await waitFor(async () => (await s.page.locator('#captions').innerText()).includes('À tout de suite'), { message: 'goodbye caption' });
      assert.equal(await s.status(), TEXT.goodbye);
      s.report = HANDOFF;
      await s.peer.closePc();

      await waitFor(() => s.state().then((st) => st === 'ended'), { timeout: 20000, message: 'ended state' });
      assert.equal(await s.status(), TEXT.handoff);
      assert.ok(await allClosed(s.page), 'pc closed, tracks stopped');
      assert.ok(await s.micMuted(), 'the microphone stayed muted');
      assert.ok(await s.page.locator('#phone-leg').isVisible());
      assert.equal(await s.page.locator('#phone-leg-number').textContent(), `Nous vous appelons au ${PHONE_MASKED}`);
      await waitFor(async () => (await s.page.locator('#phone-leg-timeline .leg-final').count()) === 1, { message: 'final line' });
      assert.deepEqual(await legLines(s.page), ['Session web terminée', 'Appel en cours de lancement', 'Votre téléphone sonne',
        'Appel décroché', 'Agent : « Bonjour Marie »', 'Appel terminé']);
      assert.equal(await s.page.locator('#phone-leg-timeline .leg-final').getAttribute('data-outcome'), 'completed');

      // The page asked our server why the call ended, then followed the call it named.
      assert.ok(s.log.status.length >= 1);
      for (const st of s.log.status) {
        assert.equal(st.method, 'GET');
        assert.equal(st.headers.authorization, `Bearer ${SESSION_TOKEN}`);
        assert.equal(st.headers.traceparent, TRACEPARENT, 'joins the trace the session request started');
      }
      assert.ok(s.log.timeline[0].url.endsWith(`/api/calls/${CALL_ID}/events`));
      assert.equal(s.log.timeline[0].headers.authorization, `Bearer ${SESSION_TOKEN}`);

      // The page never ran a tool nor talked to OpenAI; it only asked the agent to greet.
      assertOnlyOurApi(s);
      const paths = (await s.page.evaluate(() => window.callwayDebug.requests())).map((u) => new URL(u).pathname);
      assert.ok(paths.length >= 3);
      for (const p of paths) assert.match(p, /^\/api\/(realtime\/session|calls\/cx_test_1\/events)$/);
      assert.deepEqual([...new Set((await s.sent()).map((e) => e.type))], ['response.create']);
      assert.equal((await s.sent('response.create')).length, 1);
      assert.equal(await s.page.locator('#btn-voice').getAttribute('aria-pressed'), 'false');
      assert.deepEqual(s.problems, []);
    } finally {
      await s.close();
    }
  });

  test('every refusal of POST api/realtime/session shows its French message and leaves nothing open', async () => {
    const err = (code) => ({ error: { code, message: 'Message du serveur.' } });
    const cases = [
      [{ status: 400, body: err('invalid_offer') }, TEXT.offerRefused],
      [{ status: 413, body: err('body_too_large') }, TEXT.offerRefused],
      [{ status: 415, body: err('unsupported_media_type') }, TEXT.offerRefused],
      [{ status: 429, body: err('rate_limited'), headers: { 'Retry-After': '20' } }, TEXT.rateLimited],
      [{ status: 429, body: err('network_rate_limited'), headers: { 'Retry-After': '60' } }, TEXT.networkRateLimited],
      [{ status: 503, body: err('demo_busy') }, TEXT.demoBusy],
      [{ status: 502, body: err('upstream_auth') }, TEXT.upstreamDown],
      [{ status: 502, body: err('upstream_error') }, TEXT.upstreamDown],
      [{ status: 503, body: err('upstream_busy') }, TEXT.upstreamBusy],
      [{ status: 503, body: err('upstream_timeout') }, TEXT.upstreamTimeout],
      [{ status: 503, body: err('unavailable') }, TEXT.upstreamDown],
      // An undocumented code: the server's own French sentence; no JSON at all: a message by status.
      [{ status: 409, body: { error: { code: 'something_new', message: 'Une nouvelle raison, en français.' } } }, 'Une nouvelle raison, en français.'],
      [{ status: 502, contentType: 'text/html', body: '<html>Bad Gateway</html>' }, TEXT.upstreamDown],
      [{ abort: true }, TEXT.network],
      // 201 but not the documented answer: nothing is applied.
      [{ status: 201, contentType: 'text/html', body: '<html>ok</html>' }, TEXT.sdpFailed],
      [{ status: 201, body: { sdp: 'v=0\r\n', expires_at: 1, max_session_secs: 300 } }, TEXT.sdpFailed],
      [{ status: 201, body: { sdp: 'v=0\r\nnot an answer\r\n', session_token: 'st', expires_at: 1, max_session_secs: 300 } }, TEXT.sdpFailed],
    ];
    const shared = await launched.browser.newContext({ locale: 'fr-FR' });
    for (const [refuse, shown] of cases) {
      const label = refuse.abort ? 'network failure' : `${refuse.status} ${JSON.stringify(refuse.body).slice(0, 60)}`;
      const s = await startSession({ refuse, shared });
      try {
        await waitFor(() => s.state().then((st) => st === 'error'), { message: `error state for ${label}` });
        assert.equal(await s.status(), shown, label);
        assert.equal(s.log.offers.length, 1, label);
        assert.ok(await allClosed(s.page), `peer closed and microphone released for ${label}`);
        assert.equal(await s.page.evaluate(() => window.callwayDebug.pc.currentRemoteDescription), null, `no answer applied for ${label}`);
        assert.equal(await s.page.locator('#btn-voice').getAttribute('aria-pressed'), 'false');
        assert.equal(s.log.status.length, 0, 'no status asked for a call that never started');
        assertOnlyOurApi(s);
      } finally {
        await s.close();
      }
    }
    await shared.close();
  });

  test('hand-off known only from the status endpoint (output event missed): phone-leg panel for its call_id', async () => {
    const failed = { events: [{ at: at(1), kind: 'dialing' }, { at: at(3), kind: 'ended', text: 'failed' }], ended: true };
    const s = await startSession({ timeline: () => failed });
    try {
      await connected(s);
      s.report = ended('handoff', { call_id: 'cx_from_status', phone_masked: PHONE_MASKED });
      await s.peer.closePc();
      await waitFor(() => s.state().then((st) => st === 'ended'), { timeout: 20000, message: 'ended state' });
      assert.equal(await s.page.locator('#phone-leg-number').textContent(), `Nous vous appelons au ${PHONE_MASKED}`);
      await waitFor(async () => (await s.page.locator('#phone-leg-timeline .leg-final').count()) === 1, { message: 'final line' });
      assert.ok(s.log.timeline[0].url.endsWith('/api/calls/cx_from_status/events'));
      assert.deepEqual(await legLines(s.page), ['Session web terminée', 'Appel en cours de lancement', "L'appel n'a pas abouti"]);
      assert.equal(await s.page.locator('#phone-leg-timeline .leg-final').getAttribute('data-outcome'), 'failed');
      assert.equal(await s.micMuted(), false, 'no output seen, so nothing was muted before the end');
      assert.ok(await allClosed(s.page));
    } finally {
      await s.close();
    }
  });

  test('time limit: the server ends the call → "limited to N minutes" message, everything closed', async () => {
    const s = await startSession({ maxSecs: 120 });
    try {
      await connected(s);
      s.report = ended('time_limit');
      await s.peer.closePc();
      await waitFor(() => s.state().then((st) => st === 'idle'), { timeout: 20000, message: 'idle state' });
      assert.equal(await s.status(), 'La démo est limitée à 2 minutes par conversation. Touchez le micro pour en démarrer une nouvelle.');
      assert.ok(await allClosed(s.page));
      assert.equal(await s.page.locator('#phone-leg').isVisible(), false);
      assert.equal(s.log.timeline.length, 0);
    } finally {
      await s.close();
    }
  });

  test('control lost: the server could not keep the conversation → its message, everything closed', async () => {
    const s = await startSession();
    try {
      await connected(s);
      s.report = ended('control_lost');
      await s.peer.closePc();
      await waitFor(() => s.state().then((st) => st === 'error'), { timeout: 20000, message: 'error state' });
      assert.equal(await s.status(), TEXT.controlLost);
      assert.ok(await allClosed(s.page));
      assert.equal(await s.page.locator('#phone-leg').isVisible(), false);
    } finally {
      await s.close();
    }
  });

  test('connection lost while the server still says "active": asks again, then the lost-connection message', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await s.peer.closePc();
      await waitFor(() => s.state().then((st) => st === 'error'), { timeout: 20000, message: 'error state' });
      assert.equal(await s.status(), TEXT.connectionLost);
      assert.equal(s.log.status.length, 3, 'a bounded number of status requests');
      assert.ok(await allClosed(s.page));
    } finally {
      await s.close();
    }
  });

  test('server error session_expired: the page ends, asks why, and shows the expiry message', async () => {
    const s = await startSession();
    try {
      await connected(s);
      s.report = ended('closed');
      await s.peer.send({ type: 'error', event_id: 'e1', error: { type: 'invalid_request_error', code: 'session_expired', message: 'Your session hit the maximum duration of 60 minutes.', param: null, event_id: null } });
      await waitFor(() => s.state().then((st) => st === 'error'), { message: 'error state' });
      assert.equal(await s.status(), TEXT.sessionExpired);
      assert.equal(s.log.status.length, 1);
      assert.ok(await allClosed(s.page));
      await waitFor(() => s.peer.dcState().then((st) => st === 'closed'), { message: 'peer saw the channel close' });
    } finally {
      await s.close();
    }
  });

  test('a recoverable server error keeps the session open', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await s.peer.send({ type: 'error', event_id: 'e1', error: { type: 'invalid_request_error', code: 'conversation_already_has_active_response', message: 'busy', param: null, event_id: null } });
      await s.peer.send({ type: 'response.created', event_id: 'e2', response: { id: 'resp_after' } });
      await waitFor(() => s.state().then((st) => st === 'speaking'), { message: 'still handling events' });
      assert.equal(s.log.status.length, 0);
    } finally {
      await s.close();
    }
  });

  test('stop button closes everything and returns to idle, without asking the server', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await s.page.click('#btn-stop');
      await waitFor(() => s.state().then((st) => st === 'idle'), { message: 'idle' });
      assert.ok(await allClosed(s.page));
      await waitFor(() => s.peer.dcState().then((st) => st === 'closed'), { message: 'peer data channel closed' });
      assert.match(await s.status(), /Conversation terminée/);
      assert.equal(await s.page.locator('#btn-stop').isDisabled(), true);
      assert.equal(s.log.status.length, 0);
    } finally {
      await s.close();
    }
  });

  test('voice button pressed again ends the session', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await s.page.click('#btn-voice');
      await waitFor(() => s.state().then((st) => st === 'idle'), { message: 'idle' });
      assert.ok(await allClosed(s.page));
    } finally {
      await s.close();
    }
  });

  test('stop pressed once the call is placed: the web side ends and the phone leg is shown', async () => {
    const s = await startSession({ report: HANDOFF });
    try {
      await connected(s);
      await s.peer.send(...callingOutput());
      await waitFor(() => s.micMuted(), { message: 'muted' });
      await s.page.click('#btn-stop');
      await waitFor(() => s.state().then((st) => st === 'ended'), { message: 'ended state' });
      assert.ok(await s.page.locator('#phone-leg').isVisible());
      assert.ok(await allClosed(s.page));
    } finally {
      await s.close();
    }
  });

  test('the wait for the hang-up is bounded: the page closes its side and still shows the phone leg', async () => {
    const s = await startSession({ clock: true });
    try {
      await connected(s);
      await s.peer.send(...callingOutput());
      await waitFor(() => s.micMuted(), { message: 'muted' });
      // The server never hangs up and its status endpoint keeps saying "active".
      const now = await s.page.evaluate(() => Date.now());
      await s.context.clock.pauseAt(now + 100);
      await s.context.clock.runFor(25000);
      await s.context.clock.resume();
      await waitFor(() => s.state().then((st) => st === 'ended'), { message: 'ended state' });
      assert.ok(await allClosed(s.page));
      assert.equal(await s.page.locator('#phone-leg-number').textContent(), `Nous vous appelons au ${PHONE_MASKED}`);
      assert.equal(s.log.status.length, 3);
      await waitFor(() => s.peer.dcState().then((st) => st === 'closed'), { message: 'peer saw the channel close' });
      await waitFor(() => s.log.timeline.length >= 1, { message: 'timeline polled' });
      assert.ok(s.log.timeline[0].url.endsWith(`/api/calls/${CALL_ID}/events`));
    } finally {
      await s.close();
    }
  });

  test('phone-leg timeline: time order whatever the arrival order, a distinct final line, then polling stops', async () => {
    const answers = [
      { events: [{ at: at(2), kind: 'ringing' }, { at: at(0), kind: 'dialing' }], ended: false },
      { events: [{ at: at(2), kind: 'ringing' }, { at: at(0), kind: 'dialing' }, { at: at(8), kind: 'callee', text: 'Oui ?' },
        { at: at(5), kind: 'answered' }, { at: at(6), kind: 'agent', text: 'Bonjour Marie' }, { at: at(6), kind: 'callee', text: 'Allô' }], ended: false },
      { events: [{ at: at(30), kind: 'ended', text: 'no_answer' }, { at: at(2), kind: 'ringing' }, { at: at(0), kind: 'dialing' },
        { at: at(8), kind: 'callee', text: 'Oui ?' }, { at: at(9), kind: 'agent', text: 'Je reprends.' }, { at: at(5), kind: 'answered' },
        { at: at(6), kind: 'agent', text: 'Bonjour Marie' }, { at: at(6), kind: 'callee', text: 'Allô' }], ended: true },
    ];
    const gates = answers.map(() => {
      let open;
      const p = new Promise((r) => { open = r; });
      return { p, open };
    });
    const timeline = async (n) => {
      const i = Math.min(n, answers.length - 1);
      await gates[i].p;
      return answers[i];
    };
    const s = await startSession({ clock: true, report: HANDOFF, timeline });
    try {
      await connected(s);
      await s.peer.send(...callingOutput());
      await s.peer.closePc();
      await waitFor(() => s.state().then((st) => st === 'ended'), { timeout: 20000, message: 'ended state' });

      gates[0].open();
      await waitFor(async () => (await legLines(s.page)).length === 3, { message: 'first answer shown' });
      assert.deepEqual(await legLines(s.page), ['Session web terminée', 'Appel en cours de lancement', 'Votre téléphone sonne']);

      gates[1].open();
      await waitFor(async () => (await legLines(s.page)).length === 7, { message: 'second answer shown' });
      assert.deepEqual(await legLines(s.page), ['Session web terminée', 'Appel en cours de lancement', 'Votre téléphone sonne',
        'Appel décroché', 'Agent : « Bonjour Marie »', 'Vous : « Allô »', 'Vous : « Oui ? »']);
      assert.equal(await s.page.locator('#phone-leg-timeline .leg-final').count(), 0, 'no final line while the call goes on');

      // From here the page's clock only moves when the test says: the next poll needs a tick.
      const now = await s.page.evaluate(() => Date.now());
      await s.context.clock.pauseAt(now + 50);
      gates[2].open();
      await s.context.clock.runFor(1500);
      await waitFor(async () => (await s.page.locator('#phone-leg-timeline .leg-final').count()) === 1, { message: 'final line' });
      assert.deepEqual(await legLines(s.page), ['Session web terminée', 'Appel en cours de lancement', 'Votre téléphone sonne',
        'Appel décroché', 'Agent : « Bonjour Marie »', 'Vous : « Allô »', 'Vous : « Oui ? »', 'Agent : « Je reprends. »', 'Pas de réponse']);
      const final = s.page.locator('#phone-leg-timeline li').last();
      assert.equal(await final.getAttribute('data-outcome'), 'no_answer');
      assert.match(await final.getAttribute('class'), /leg-final/);
      assert.notEqual(await final.evaluate((el) => getComputedStyle(el).fontWeight),
        await s.page.locator('#phone-leg-timeline li').nth(1).evaluate((el) => getComputedStyle(el).fontWeight),
        'the final line is styled apart');

      // The call is over: a minute of page time brings no more polling (a poll would be logged by
      // the page as soon as its timer fires, inside runFor).
      const asked = (await s.page.evaluate(() => window.callwayDebug.requests())).length;
      const polls = s.log.timeline.length;
      await s.context.clock.runFor(60000);
      assert.equal((await s.page.evaluate(() => window.callwayDebug.requests())).length, asked);
      assert.equal(s.log.timeline.length, polls);
    } finally {
      await s.close();
    }
  });
});
