// Client-logic tests of the voice demo (public/assets/js) against scripted fakes:
// - backend routes (api/realtime-token, api/tools/*) are answered by Playwright route handlers;
// - the Realtime WebRTC endpoint is a second Chromium page (fake-peer.mjs).
// They check what the page does with the documented events (GA names); the full journey against
// the real Rust services and simulators is a separate suite that sets CALLWAY_BASE_URL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, siteUnderTest, waitFor, watchPage } from './helpers.mjs';
import { openFakePeer } from './fake-peer.mjs';

const PHONE_MASKED = '+33 6 •• •• •• 78';
const SAVE_LEAD_ARGS = '{"first_name":"Marie","last_name":"Dupont","phone":"06 12 34 56 78","consent":true}';

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

function defaultTools(name) {
  if (name === 'save_lead') return { status: 200, body: { lead_id: 'lead_123', phone_e164: '+33612345678' } };
  if (name === 'trigger_call') return { status: 200, body: { call_id: 'call_tel_1', phone_masked: PHONE_MASKED } };
  return { status: 404, body: { error: { code: 'not_found', message: 'Inconnu.' } } };
}

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

async function startSession({ tools = defaultTools, sdpStatus = 201 } = {}) {
  const context = await launched.browser.newContext({ locale: 'fr-FR' });
  const page = await context.newPage();
  const problems = watchPage(page);
  const peer = await openFakePeer(context);
  const log = { sdp: [], tools: [], timeline: [] };
  await page.route('**/api/realtime-token', (route) => route.fulfill({
    status: 200,
    contentType: 'application/json',
    body: JSON.stringify({
      client_secret: 'ek_test_secret', expires_at: Math.floor(Date.now() / 1000) + 600,
      session_token: 'st_test_session', realtime_calls_url: new URL('v1/realtime/calls', site.url).href,
      traceparent: TRACEPARENT,
    }),
  }));
  await page.route('**/v1/realtime/calls', async (route) => {
    const req = route.request();
    log.sdp.push({ method: req.method(), headers: await req.allHeaders(), body: req.postData() });
    if (sdpStatus !== 201) {
      await route.fulfill({ status: sdpStatus, contentType: 'application/json', body: '{"error":{"message":"Invalid ephemeral key.","type":"invalid_request_error","code":"invalid_api_key","param":null}}' });
      return;
    }
    const answer = await peer.answer(req.postData());
    await route.fulfill({ status: 201, headers: { 'Content-Type': 'application/sdp', Location: '/v1/realtime/calls/rtc_test' }, body: answer });
  });
  await page.route('**/api/tools/*', async (route) => {
    const req = route.request();
    const name = new URL(req.url()).pathname.split('/').pop();
    const entry = { name, headers: await req.allHeaders(), body: req.postData() };
    log.tools.push(entry);
    const res = await tools(name, entry);
    await route.fulfill({ status: res.status, contentType: 'application/json', body: JSON.stringify(res.body) });
  });
  // The phone-leg timeline the page polls after the hand-off (served by tools-svc in production).
  await page.route('**/api/calls/*/events', async (route) => {
    const req = route.request();
    log.timeline.push({ url: req.url(), headers: await req.allHeaders() });
    const at = new Date().toISOString();
    await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({
      events: [{ at, kind: 'dialing' }, { at, kind: 'ringing' }, { at, kind: 'answered' },
        { at, kind: 'agent', text: 'Bonjour Marie' }, { at, kind: 'ended', text: 'completed' }],
      ended: true,
    }) });
  });
  await page.goto(site.url, { waitUntil: 'networkidle' });
  await page.click('#btn-voice');
  const s = {
    context, page, peer, log, problems,
    state: () => page.evaluate(() => window.callwayDebug.state),
    status: () => page.locator('#voice-status').textContent(),
    sent: async (type) => (await peer.received()).filter((e) => !type || e.type === type),
    close: () => context.close(),
  };
  return s;
}

async function connected(s) {
  await waitFor(() => s.peer.dcState().then((st) => st === 'open'), { message: 'data channel open' });
  await waitFor(() => s.state().then((st) => st === 'listening'), { message: 'listening state' });
}

async function triggerCall(s) {
  const item = { type: 'function_call', status: 'completed', name: 'trigger_call', call_id: 'call_trig', arguments: '{"lead_id":"lead_123","summary":"Rappel."}' };
  await s.peer.send(
    { type: 'response.created', event_id: 't1', response: { id: 'resp_trig' } },
    { type: 'response.output_item.done', event_id: 't2', response_id: 'resp_trig', output_index: 0, item },
    { type: 'response.done', event_id: 't3', response: { id: 'resp_trig', status: 'completed', output: [item] } },
  );
  await waitFor(async () => (await s.sent('response.create')).length >= 1, { message: 'response.create after trigger_call' });
}

const allClosed = (page) => page.evaluate(() => {
  const pc = window.callwayDebug.pc;
  return pc.connectionState === 'closed' && pc.signalingState === 'closed'
    && pc.getSenders().every((snd) => !snd.track || snd.track.readyState === 'ended');
});

describe('voice client against a scripted Realtime peer', () => {
  test('full conversation: offer, greeting, captions, levels, tools, hand-off', async () => {
    const s = await startSession();
    try {
      await connected(s);

      // The SDP offer went to the calls URL with the ephemeral key only.
      assert.equal(s.log.sdp.length, 1);
      const offer = s.log.sdp[0];
      assert.equal(offer.method, 'POST');
      assert.equal(offer.headers.authorization, 'Bearer ek_test_secret');
      assert.equal(offer.headers.traceparent, undefined, 'our trace context is not sent to OpenAI');
      assert.match(offer.headers['content-type'], /^application\/sdp/);
      assert.match(offer.body, /^v=0/);
      assert.match(offer.body, /m=audio /);
      assert.match(offer.body, /m=application .*webrtc-datachannel/, 'data channel created before the offer');
      assert.match(offer.body, /a=candidate:/, 'gathered candidates are in the offer');

      // The fake microphone (a 440 Hz tone in the WAV) is measured from the real stream.
      await waitFor(() => s.page.evaluate(() => window.callwayDebug.micLevel() > 0.01), { message: 'microphone level' });

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
      assert.equal(await s.page.locator('#btn-voice').getAttribute('data-state'), 'speaking');
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

      // Tool call save_lead (described twice: arguments.done and output_item.done) → handled once.
      const callItem = { id: 'item_f1', type: 'function_call', status: 'completed', name: 'save_lead', call_id: 'call_save_1', arguments: SAVE_LEAD_ARGS };
      await s.peer.send(
        { type: 'response.created', event_id: 'event_12', response: { id: 'resp_2', status: 'in_progress' } },
        { type: 'response.function_call_arguments.done', event_id: 'event_13', response_id: 'resp_2', item_id: 'item_f1', output_index: 0, call_id: 'call_save_1', name: 'save_lead', arguments: SAVE_LEAD_ARGS },
        { type: 'response.output_item.done', event_id: 'event_14', response_id: 'resp_2', output_index: 0, item: callItem },
        { type: 'response.done', event_id: 'event_15', response: { id: 'resp_2', status: 'completed', output: [callItem] } },
      );
      await waitFor(async () => (await s.sent('response.create')).length === 2, { message: 'response.create after save_lead' });
      assert.equal(s.log.tools.length, 1, 'save_lead called once');
      const save = s.log.tools[0];
      assert.equal(save.name, 'save_lead');
      assert.equal(save.headers.authorization, 'Bearer st_test_session');
      assert.equal(save.headers.traceparent, TRACEPARENT, 'tool calls join the trace the token request started');
      assert.match(save.headers['content-type'], /^application\/json/);
      assert.equal(save.body, SAVE_LEAD_ARGS, 'arguments forwarded as is');
      let sent = await s.peer.received();
      const outputs = sent.filter((e) => e.type === 'conversation.item.create');
      assert.equal(outputs.length, 1);
      assert.deepEqual(outputs[0].item, { type: 'function_call_output', call_id: 'call_save_1', output: JSON.stringify(defaultTools('save_lead').body) });
      assert.ok(sent.indexOf(outputs[0]) < sent.map((e) => e.type).lastIndexOf('response.create'), 'output before response.create');

      // trigger_call → output, one response.create, goodbye, then clean close and the phone-leg panel.
      const trig = { id: 'item_f2', type: 'function_call', status: 'completed', name: 'trigger_call', call_id: 'call_trig_1', arguments: '{"lead_id":"lead_123","summary":"Souhaite un rappel."}' };
      await s.peer.send(
        { type: 'response.created', event_id: 'event_16', response: { id: 'resp_3', status: 'in_progress' } },
        { type: 'response.function_call_arguments.done', event_id: 'event_17', response_id: 'resp_3', item_id: 'item_f2', output_index: 0, call_id: 'call_trig_1', name: 'trigger_call', arguments: trig.arguments },
        { type: 'response.done', event_id: 'event_18', response: { id: 'resp_3', status: 'completed', output: [trig] } },
      );
      await waitFor(async () => (await s.sent('response.create')).length === 3, { message: 'response.create after trigger_call' });
      assert.equal(s.log.tools[1].body, trig.arguments);
      sent = await s.peer.received();
      assert.equal(sent.filter((e) => e.type === 'conversation.item.create').length, 2);
      assert.equal(await s.state(), 'listening', 'still connected until the goodbye is said');

      await s.peer.send(
        { type: 'response.created', event_id: 'event_19', response: { id: 'resp_4', status: 'in_progress' } },
        { type: 'output_audio_buffer.started', event_id: 'event_20', response_id: 'resp_4' },
        { type: 'response.output_audio_transcript.done', event_id: 'event_21', response_id: 'resp_4', item_id: 'item_a4', output_index: 0, content_index: 0, transcript: 'Parfait, je vous appelle tout de suite. À tout de suite !' },
        { type: 'response.done', event_id: 'event_22', response: { id: 'resp_4', status: 'completed', output: [] } },
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await s.state(), 'speaking', 'waits for the goodbye audio to finish');
      await s.peer.send({ type: 'output_audio_buffer.stopped', event_id: 'event_23', response_id: 'resp_4' });

      await waitFor(() => s.state().then((st) => st === 'ended'), { message: 'ended state' });
      await waitFor(() => allClosed(s.page), { message: 'pc closed, tracks stopped' });
      await waitFor(() => s.peer.dcState().then((st) => st === 'closed'), { message: 'peer saw the data channel close' });
      assert.ok(await s.page.locator('#phone-leg').isVisible());
      assert.equal(await s.page.locator('#phone-leg-number').textContent(), `Nous vous appelons au ${PHONE_MASKED}`);
      await waitFor(async () => /Appel terminé/.test(await s.page.locator('#phone-leg').textContent()), { message: 'phone-leg timeline' });
      const leg = await s.page.locator('#phone-leg').textContent();
      for (const label of ['Votre téléphone sonne', 'Appel décroché', 'Agent : « Bonjour Marie »']) assert.ok(leg.includes(label), leg);
      assert.ok(s.log.timeline[0].url.endsWith('/api/calls/call_tel_1/events'));
      assert.match(s.log.timeline[0].headers.authorization, /^Bearer /);
      assert.equal(await s.page.locator('#btn-voice').getAttribute('aria-pressed'), 'false');
      assert.equal((await s.sent('response.create')).length, 3, 'no extra response.create');
      assert.deepEqual(s.problems, []);
    } finally {
      await s.close();
    }
  });

  test('several calls in one response: every output, then one response.create; errors are passed back', async () => {
    const s = await startSession({
      tools: (name, entry) => (entry.body.includes('"bad"')
        ? { status: 422, body: { error: { code: 'invalid_phone', message: 'Numéro invalide.' } } }
        : defaultTools(name)),
    });
    try {
      await connected(s);
      const a = { type: 'function_call', name: 'save_lead', call_id: 'call_a', arguments: '{"phone":"bad"}' };
      const b = { type: 'function_call', name: 'save_lead', call_id: 'call_b', arguments: SAVE_LEAD_ARGS };
      await s.peer.send(
        { type: 'response.created', event_id: 'e1', response: { id: 'resp_x' } },
        { type: 'response.function_call_arguments.done', event_id: 'e2', response_id: 'resp_x', call_id: 'call_a', name: a.name, arguments: a.arguments },
        { type: 'response.function_call_arguments.done', event_id: 'e3', response_id: 'resp_x', call_id: 'call_b', name: b.name, arguments: b.arguments },
        { type: 'response.done', event_id: 'e4', response: { id: 'resp_x', status: 'completed', output: [a, b] } },
      );
      await waitFor(async () => (await s.sent('response.create')).length >= 1, { message: 'response.create' });
      await new Promise((r) => setTimeout(r, 300));
      const sent = await s.peer.received();
      const outputs = sent.filter((e) => e.type === 'conversation.item.create').map((e) => e.item);
      assert.equal(outputs.length, 2);
      const byId = Object.fromEntries(outputs.map((o) => [o.call_id, JSON.parse(o.output)]));
      assert.equal(byId.call_a.error.code, 'invalid_phone');
      assert.equal(byId.call_b.lead_id, 'lead_123');
      assert.equal(sent.filter((e) => e.type === 'response.create').length, 1);
      assert.equal(sent.at(-1).type, 'response.create', 'response.create after the outputs');
    } finally {
      await s.close();
    }
  });

  test('hand-off without audio-buffer events: closes on the goodbye response.done', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await triggerCall(s);
      await s.peer.send(
        { type: 'response.created', event_id: 'g1', response: { id: 'resp_bye' } },
        { type: 'response.done', event_id: 'g2', response: { id: 'resp_bye', status: 'completed', output: [] } },
      );
      await waitFor(() => s.state().then((st) => st === 'ended'), { message: 'ended state' });
      assert.ok(await allClosed(s.page));
      assert.equal(await s.page.locator('#phone-leg-number').textContent(), `Nous vous appelons au ${PHONE_MASKED}`);
      await waitFor(async () => /Appel terminé/.test(await s.page.locator('#phone-leg').textContent()), { message: 'phone-leg timeline' });
      const leg = await s.page.locator('#phone-leg').textContent();
      for (const label of ['Votre téléphone sonne', 'Appel décroché', 'Agent : « Bonjour Marie »']) assert.ok(leg.includes(label), leg);
      assert.ok(s.log.timeline[0].url.endsWith('/api/calls/call_tel_1/events'));
      assert.match(s.log.timeline[0].headers.authorization, /^Bearer /);
    } finally {
      await s.close();
    }
  });

  test('link lost after trigger_call succeeded: still shows the call, not an error', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await triggerCall(s);
      await s.peer.closePc();
      await waitFor(() => s.state().then((st) => st === 'ended'), { timeout: 20000, message: 'ended state' });
      assert.ok(await s.page.locator('#phone-leg').isVisible());
      assert.ok(await allClosed(s.page));
    } finally {
      await s.close();
    }
  });

  test('trigger_call refused: error goes back to the model, session stays open', async () => {
    const s = await startSession({
      tools: (name) => (name === 'trigger_call'
        ? { status: 409, body: { error: { code: 'callback_already_requested', message: 'Un rappel a déjà été demandé pour cette session.' } } }
        : defaultTools(name)),
    });
    try {
      await connected(s);
      await triggerCall(s);
      const out = (await s.sent('conversation.item.create'))[0].item.output;
      assert.equal(JSON.parse(out).error.code, 'callback_already_requested');
      await s.peer.send(
        { type: 'response.created', event_id: 'g1', response: { id: 'resp_next' } },
        { type: 'response.done', event_id: 'g2', response: { id: 'resp_next', status: 'completed', output: [] } },
      );
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await s.state(), 'listening');
      assert.equal(await s.page.locator('#phone-leg').isVisible(), false);
    } finally {
      await s.close();
    }
  });

  test('stop button closes everything and returns to idle', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await s.page.click('#btn-stop');
      await waitFor(() => s.state().then((st) => st === 'idle'), { message: 'idle' });
      assert.ok(await allClosed(s.page));
      await waitFor(() => s.peer.dcState().then((st) => st === 'closed'), { message: 'peer data channel closed' });
      assert.match(await s.status(), /Conversation terminée/);
      assert.equal(await s.page.locator('#btn-stop').isDisabled(), true);
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

  test('server error session_expired ends the session with a French message', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await s.peer.send({ type: 'error', event_id: 'e1', error: { type: 'invalid_request_error', code: 'session_expired', message: 'Your session hit the maximum duration of 60 minutes.', param: null, event_id: null } });
      await waitFor(() => s.state().then((st) => st === 'error'), { message: 'error state' });
      assert.match(await s.status(), /session a expiré/);
      assert.ok(await allClosed(s.page));
    } finally {
      await s.close();
    }
  });

  test('a recoverable server error keeps the session open', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await s.peer.send({ type: 'error', event_id: 'e1', error: { type: 'invalid_request_error', code: 'conversation_already_has_active_response', message: 'busy', param: null, event_id: null } });
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await s.state(), 'listening');
    } finally {
      await s.close();
    }
  });

  test('connection lost: the peer goes away → French message, everything closed', async () => {
    const s = await startSession();
    try {
      await connected(s);
      await s.peer.closePc();
      await waitFor(() => s.state().then((st) => st === 'error'), { timeout: 20000, message: 'error state' });
      assert.match(await s.status(), /connexion avec l'agent a été perdue/);
      assert.ok(await allClosed(s.page));
    } finally {
      await s.close();
    }
  });

  test('SDP exchange refused: French message, peer connection closed', async () => {
    const s = await startSession({ sdpStatus: 401 });
    try {
      await waitFor(() => s.state().then((st) => st === 'error'), { message: 'error state' });
      assert.match(await s.status(), /connexion au service vocal a échoué/);
      assert.ok(await allClosed(s.page));
    } finally {
      await s.close();
    }
  });
});
