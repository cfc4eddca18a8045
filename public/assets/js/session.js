// One voice session with the Callway agent: microphone → our server creates the OpenAI Realtime
// call from the page's SDP offer (POST api/realtime/session) → WebRTC audio + the "oai-events" data
// channel, from which the page only shows captions and states. The page holds no OpenAI credential
// and never executes a tool: the server runs the tools on its own (sideband) connection to the call.
// When trigger_call's output shows up on the data channel the microphone is muted at once; when the
// connection ends the page asks the server why (GET api/realtime/session) and shows that.
// UI-agnostic: everything visible goes through the `ui` callbacks given to the constructor.
import { MSG } from './messages.js';
import { readJson, request } from './net.js';

const ICE_GATHERING_MAX_MS = 2000; // then send whatever candidates gathering produced
const SESSION_POST_TIMEOUT_MS = 20000; // the server creates the call at OpenAI meanwhile
const DC_OPEN_MAX_MS = 15000; // answer applied but no data channel: the audio path is blocked
const DISCONNECTED_GRACE_MS = 5000; // "disconnected" may recover on its own
const HANDOFF_MAX_WAIT_MS = 20000; // the server hangs up after the goodbye; do not hang on forever
const TIME_LIMIT_GRACE_MS = 15000; // past max_session_secs the server should have hung up already
const STATUS_TIMEOUT_MS = 5000;
const STATUS_ATTEMPTS = 3; // "active" right after our link dropped: the server may not know yet
const STATUS_RETRY_MS = 700;
const MAX_TIMER_MS = 2 ** 31 - 1; // setTimeout fires at once beyond this
const GREETING_FALLBACK_MS = 1500; // if no session.created arrives after the channel opened
const BENIGN_ERRORS = new Set(['response_cancel_not_active', 'conversation_already_has_active_response']);
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const CALL_ID = /^cx_[A-Za-z0-9_-]{1,120}$/;

export class CallwayError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// Documented refusals of POST api/realtime/session → what the visitor reads.
const REFUSALS = Object.freeze({
  invalid_offer: MSG.offerRefused,
  body_too_large: MSG.offerRefused,
  unsupported_media_type: MSG.offerRefused,
  rate_limited: MSG.rateLimited,
  network_rate_limited: MSG.networkRateLimited,
  demo_busy: MSG.demoBusy,
  upstream_busy: MSG.upstreamBusy,
  upstream_timeout: MSG.upstreamTimeout,
  upstream_auth: MSG.upstreamDown,
  upstream_error: MSG.upstreamDown,
  unavailable: MSG.upstreamDown,
});

function refusal(status, body) {
  const err = (body && typeof body.error === 'object' && body.error) || {};
  const code = typeof err.code === 'string' ? err.code : '';
  if (Object.hasOwn(REFUSALS, code)) return new CallwayError(code, REFUSALS[code]);
  // An undocumented code: our server's own French sentence if it sent one, else one by status.
  const own = typeof err.message === 'string' && err.message.trim().length > 0 && err.message.length <= 300;
  const fallback = status === 429 ? MSG.rateLimited : status >= 500 ? MSG.upstreamDown : MSG.startFailed;
  return new CallwayError(code || `http_${status}`, own ? err.message.trim() : fallback);
}

// The 201 body, or null when it is not what the contract says.
function parseAnswer(body) {
  if (!body || typeof body !== 'object') return null;
  const { sdp, session_token: token, expires_at: expiresAt, max_session_secs: maxSecs, traceparent } = body;
  if (typeof sdp !== 'string' || !sdp.startsWith('v=0')) return null;
  if (typeof token !== 'string' || !token) return null;
  if (!Number.isFinite(expiresAt) || !Number.isFinite(maxSecs) || maxSecs <= 0) return null;
  return {
    sdp,
    sessionToken: token,
    maxSessionSecs: maxSecs,
    traceparent: typeof traceparent === 'string' && TRACEPARENT.test(traceparent) ? traceparent : null,
  };
}

// trigger_call's output as the server wrote it, when it says the phone call is being placed.
function callingOutput(item) {
  if (!item || item.type !== 'function_call_output' || typeof item.output !== 'string') return null;
  let out;
  try {
    out = JSON.parse(item.output);
  } catch {
    return null;
  }
  if (!out || out.status !== 'calling' || typeof out.call_id !== 'string' || !CALL_ID.test(out.call_id)) return null;
  return { callId: out.call_id, phoneMasked: typeof out.phone_masked === 'string' ? out.phone_masked : '' };
}

function micError(e) {
  const name = e && e.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') return new CallwayError('mic_denied', MSG.micDenied);
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return new CallwayError('mic_missing', MSG.micMissing);
  if (name === 'NotReadableError' || name === 'AbortError') return new CallwayError('mic_busy', MSG.micBusy);
  return new CallwayError('mic_error', MSG.micMissing);
}

function waitIceGathering(pc, maxMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    let timer = 0;
    const check = () => {
      if (pc.iceGatheringState !== 'complete') return;
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    timer = setTimeout(() => {
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }, maxMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

const isFunctionCall = (item) => !!item && item.type === 'function_call';

export class RealtimeSession {
  /**
   * ui: { state(name, text?), status(text), peer(pc), micStream(s), remoteStream(s),
   *       caption({role, id, text?, delta?, final?}), event(type), end({state, code, message}),
   *       handoff({phoneMasked, callId, sessionToken, traceparent}) }
   */
  constructor(ui) {
    this.ui = ui;
    this.closed = false; // media closed (teardown done)
    this.finished = false; // the visitor was told how it ended
    this.pc = null;
    this.dc = null;
    this.mic = null;
    this.session = null; // {sessionToken, maxSessionSecs, traceparent} once the server answered
    this.timers = new Set();
    this.pendingCalls = new Set(); // function calls the server has not answered yet
    this.activeResponse = null;
    this.audioPlaying = false;
    this.greeted = false;
    this.opened = false;
    this.handoff = null; // {callId, phoneMasked} once trigger_call's output said "calling"
    this.discTimer = 0;
  }

  later(fn, ms) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  async start() {
    try {
      await this.connect();
    } catch (e) {
      if (e instanceof CallwayError) this.fail(e);
      else {
        console.warn('[callway] unexpected error', e);
        this.fail(new CallwayError('unexpected', MSG.generic));
      }
    }
  }

  async connect() {
    if (typeof RTCPeerConnection === 'undefined') throw new CallwayError('webrtc_unsupported', MSG.webrtcUnsupported);
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new CallwayError('mic_unsupported', MSG.micUnsupported);
    }
    this.ui.state('connecting', MSG.micPrompt);

    // 1. Microphone first: no call is created for a visitor who refuses it.
    let mic;
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (e) {
      throw micError(e);
    }
    if (this.closed) return mic.getTracks().forEach((t) => t.stop());
    this.mic = mic;
    this.ui.micStream(mic);
    this.ui.state('connecting', MSG.connecting);

    // 2. Peer connection; the data channel must exist before the offer.
    const pc = new RTCPeerConnection();
    this.pc = pc;
    this.ui.peer(pc);
    pc.ontrack = (ev) => this.ui.remoteStream(ev.streams[0] || new MediaStream([ev.track]));
    pc.onconnectionstatechange = () => this.onConnectionState();
    for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
    const dc = pc.createDataChannel('oai-events');
    this.dc = dc;
    dc.onopen = () => this.onOpen();
    dc.onclose = () => this.ending('channel_closed');
    dc.onerror = (ev) => console.warn('[callway] data channel error', ev.error || ev);
    dc.onmessage = (ev) => this.onMessage(ev.data);

    await pc.setLocalDescription(await pc.createOffer());
    await waitIceGathering(pc, ICE_GATHERING_MAX_MS);
    if (this.closed) return;

    // 3. The offer goes to our server, which creates the call and answers with OpenAI's SDP.
    let resp;
    try {
      resp = await request('api/realtime/session', {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
        timeoutMs: SESSION_POST_TIMEOUT_MS,
      });
    } catch (e) {
      console.warn('[callway] session request failed', e && e.name);
      throw new CallwayError('network', MSG.network);
    }
    const body = await readJson(resp);
    if (this.closed) return;
    if (!resp.ok) {
      const err = refusal(resp.status, body);
      console.warn('[callway] session refused', resp.status, err.code);
      throw err;
    }
    const session = parseAnswer(body);
    if (!session) throw new CallwayError('answer_invalid', MSG.sdpFailed);
    this.session = session;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: session.sdp });
    } catch (e) {
      console.warn('[callway] invalid SDP answer', e);
      throw new CallwayError('sdp_invalid', MSG.sdpFailed);
    }
    this.later(() => {
      if (!this.closed && dc.readyState !== 'open') this.fail(new CallwayError('connection_failed', MSG.connectionFailed));
    }, DC_OPEN_MAX_MS);
  }

  onConnectionState() {
    const pc = this.pc;
    if (!pc || this.closed) return;
    const s = pc.connectionState;
    if (s === 'failed' || s === 'closed') {
      this.ending('peer_failed');
    } else if (s === 'disconnected') {
      if (!this.discTimer) {
        this.discTimer = this.later(() => {
          this.discTimer = 0;
          if (pc.connectionState === 'disconnected' || pc.connectionState === 'failed') this.ending('peer_disconnected');
        }, DISCONNECTED_GRACE_MS);
      }
    } else if (this.discTimer) {
      clearTimeout(this.discTimer);
      this.timers.delete(this.discTimer);
      this.discTimer = 0;
    }
  }

  onOpen() {
    if (this.closed) return;
    this.opened = true;
    this.ui.state('listening', MSG.connected);
    // Ask for the agent's greeting once the session exists (session.created), or shortly after open.
    this.later(() => this.greet(), GREETING_FALLBACK_MS);
    // The server ends the call at max_session_secs; if it never does, the page stops anyway.
    const limitMs = Math.min(this.session.maxSessionSecs * 1000 + TIME_LIMIT_GRACE_MS, MAX_TIMER_MS);
    this.later(() => this.ending('time_limit'), limitMs);
  }

  greet() {
    if (this.greeted || this.closed) return;
    this.greeted = true;
    if (!this.activeResponse) this.send({ type: 'response.create' });
  }

  send(event) {
    if (!this.closed && this.dc && this.dc.readyState === 'open') {
      this.dc.send(JSON.stringify(event));
      return true;
    }
    console.warn('[callway] data channel not open, event dropped:', event.type);
    return false;
  }

  onMessage(data) {
    let ev;
    try {
      ev = JSON.parse(data);
    } catch {
      console.warn('[callway] non-JSON message on the data channel');
      return;
    }
    if (!ev || typeof ev.type !== 'string' || this.closed) return;
    this.ui.event(ev.type);
    this.handle(ev);
  }

  // Status line for a state: once the call is being placed, every line says goodbye.
  say(text) {
    return this.handoff ? MSG.goodbye : text;
  }

  handle(ev) {
    switch (ev.type) {
      case 'session.created':
        this.greet();
        break;
      case 'input_audio_buffer.speech_started':
        this.greeted = true; // the visitor spoke first: no greeting needed any more
        if (!this.handoff) this.ui.state('listening', MSG.listening);
        if (ev.item_id) this.ui.caption({ role: 'user', id: ev.item_id, text: '' });
        break;
      case 'input_audio_buffer.speech_stopped':
        this.ui.status(this.say(MSG.thinking));
        break;
      case 'conversation.item.input_audio_transcription.completed':
        this.ui.caption({ role: 'user', id: ev.item_id, text: ev.transcript || '', final: true });
        break;
      case 'conversation.item.input_audio_transcription.failed':
        this.ui.caption({ role: 'user', id: ev.item_id, text: '', final: true });
        break;
      case 'response.created':
        this.activeResponse = (ev.response && ev.response.id) || '_';
        this.greeted = true;
        this.ui.state('speaking', this.say(MSG.speaking));
        break;
      case 'output_audio_buffer.started':
        this.audioPlaying = true;
        this.ui.state('speaking', this.say(MSG.speaking));
        break;
      case 'output_audio_buffer.stopped':
      case 'output_audio_buffer.cleared':
        this.audioPlaying = false;
        if (!this.activeResponse && !this.handoff) this.ui.state('listening', MSG.listening);
        break;
      case 'response.output_audio_transcript.delta':
      case 'response.output_text.delta':
        this.ui.caption({ role: 'agent', id: ev.item_id, delta: ev.delta || '' });
        break;
      case 'response.output_audio_transcript.done':
        this.ui.caption({ role: 'agent', id: ev.item_id, text: ev.transcript, final: true });
        break;
      case 'response.output_text.done':
        this.ui.caption({ role: 'agent', id: ev.item_id, text: ev.text, final: true });
        break;
      // The model calls a tool: the server runs it on its sideband; the page only says so.
      case 'response.function_call_arguments.done':
        this.callPending(ev.call_id, ev.name);
        break;
      case 'response.output_item.done':
        if (isFunctionCall(ev.item)) this.callPending(ev.item.call_id, ev.item.name);
        break;
      case 'conversation.item.added':
      case 'conversation.item.done':
        this.itemSeen(ev.item);
        break;
      case 'response.done':
        this.responseDone(ev.response || {});
        break;
      case 'error':
        this.serverError(ev.error || {});
        break;
      default:
        break;
    }
  }

  callPending(callId, name) {
    if (!callId || this.handoff) return;
    this.pendingCalls.add(callId);
    this.ui.status(name === 'trigger_call' ? MSG.placingCall : MSG.savingLead);
  }

  itemSeen(item) {
    if (!item || item.type !== 'function_call_output') return;
    this.pendingCalls.delete(item.call_id);
    const calling = callingOutput(item);
    if (calling) this.callPlaced(calling);
  }

  // trigger_call succeeded on the server: the visitor's next words belong on the phone.
  callPlaced({ callId, phoneMasked }) {
    if (this.handoff || this.closed) return;
    this.muteMic();
    this.handoff = { callId, phoneMasked };
    this.ui.status(MSG.goodbye);
    // The server lets the agent say goodbye, then hangs the web call up (the channel closes).
    this.later(() => this.ending('handoff_wait'), HANDOFF_MAX_WAIT_MS);
  }

  muteMic() {
    if (this.mic) for (const t of this.mic.getAudioTracks()) t.enabled = false;
  }

  responseDone(response) {
    const rid = response.id || this.activeResponse || '_';
    if (!this.activeResponse || this.activeResponse === rid) this.activeResponse = null;
    for (const item of response.output || []) {
      if (isFunctionCall(item) && (!item.status || item.status === 'completed')) this.callPending(item.call_id, item.name);
    }
    if (this.audioPlaying || this.handoff) return;
    if (this.pendingCalls.size) this.ui.state('listening'); // the status keeps the tool's message
    else this.ui.state('listening', MSG.listening);
  }

  serverError(err) {
    console.warn('[callway] realtime error event', err.type, err.code, err.message);
    if (BENIGN_ERRORS.has(err.code)) return;
    if (err.code === 'session_expired') this.ending('session_expired');
    else if (err.code === 'beta_api_shape_disabled') this.fail(new CallwayError('realtime_error', MSG.generic));
    // other errors are recoverable: the session stays open
  }

  // ---- ending -----------------------------------------------------------------------------

  authHeaders() {
    const headers = { Authorization: `Bearer ${this.session.sessionToken}` };
    // Joins the request to the trace the session request started (one trace per journey).
    if (this.session.traceparent) headers.traceparent = this.session.traceparent;
    return headers;
  }

  // GET api/realtime/session: why the server ended the call, or null if it cannot say.
  async endReport() {
    let last = null;
    for (let attempt = 0; attempt < STATUS_ATTEMPTS; attempt++) {
      if (attempt) await pause(STATUS_RETRY_MS);
      try {
        const resp = await request('api/realtime/session', { headers: this.authHeaders(), timeoutMs: STATUS_TIMEOUT_MS });
        const body = await readJson(resp);
        if (resp.status === 401 || resp.status === 404) return null; // nothing to learn any more
        if (!resp.ok || !body || (body.state !== 'active' && body.state !== 'ended')) continue;
        if (body.state === 'ended') return body;
        last = body; // still "active": the server may not have seen the end yet
      } catch { /* network hiccup: ask again */ }
    }
    return last;
  }

  // The conversation is over (channel or peer closed, hand-off wait, time limit): close our side,
  // then show what the server says happened, falling back on what the page saw itself.
  async ending(cause) {
    if (this.closed) return;
    const opened = this.opened;
    this.teardown();
    if (!this.session) {
      this.finish(() => this.ui.end({ state: 'error', code: cause, message: MSG.connectionFailed }));
      return;
    }
    this.ui.state('ending', this.handoff ? MSG.goodbye : MSG.ending);
    const report = await this.endReport();
    const reason = report && report.state === 'ended' ? report.reason : null;
    const max = this.session.maxSessionSecs;
    if (reason === 'handoff') {
      const callId = typeof report.call_id === 'string' && CALL_ID.test(report.call_id) ? report.call_id : this.handoff && this.handoff.callId;
      const phoneMasked = typeof report.phone_masked === 'string' ? report.phone_masked : (this.handoff && this.handoff.phoneMasked) || '';
      this.showHandoff({ callId: callId || null, phoneMasked });
    } else if (reason === 'time_limit') {
      this.finish(() => this.ui.end({ state: 'idle', code: 'time_limit', message: MSG.timeLimit(max) }));
    } else if (reason === 'control_lost') {
      this.finish(() => this.ui.end({ state: 'error', code: 'control_lost', message: MSG.controlLost }));
    } else if (this.handoff) {
      // The server could not say otherwise, and its own output said the phone call is placed.
      this.showHandoff(this.handoff);
    } else if (cause === 'time_limit') {
      this.finish(() => this.ui.end({ state: 'idle', code: 'time_limit', message: MSG.timeLimit(max) }));
    } else {
      const message = cause === 'session_expired' ? MSG.sessionExpired : opened ? MSG.connectionLost : MSG.connectionFailed;
      this.finish(() => this.ui.end({ state: 'error', code: cause, message }));
    }
  }

  showHandoff({ callId, phoneMasked }) {
    const { sessionToken, traceparent } = this.session;
    this.finish(() => this.ui.handoff({ callId, phoneMasked, sessionToken, traceparent }));
  }

  finish(show) {
    if (this.finished) return;
    this.finished = true;
    show();
  }

  fail(err) {
    if (!this.teardown()) return;
    console.warn('[callway] session ended:', err.code);
    this.finish(() => this.ui.end({ state: 'error', code: err.code, message: err.message }));
  }

  stop() {
    // Once the call is being placed, stopping only ends the web side sooner: show the phone leg.
    if (this.handoff) return this.ending('stopped');
    if (!this.teardown()) return undefined;
    this.finish(() => this.ui.end({ state: 'idle', code: 'stopped', message: MSG.stopped }));
    return undefined;
  }

  // Close everything exactly once. Returns false if it was already closed.
  teardown() {
    if (this.closed) return false;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    try {
      if (this.dc && this.dc.readyState !== 'closed') this.dc.close();
    } catch { /* already closing */ }
    if (this.pc) {
      for (const sender of this.pc.getSenders()) if (sender.track) sender.track.stop();
      this.pc.close();
    }
    if (this.mic) this.mic.getTracks().forEach((t) => t.stop());
    return true;
  }
}
