// One voice session with the Callway agent: microphone → token → WebRTC (OpenAI Realtime GA,
// data channel "oai-events") → events, tool calls and the hand-off to the phone.
// UI-agnostic: everything visible goes through the `ui` callbacks given to the constructor.
import { MSG } from './messages.js';

const ICE_GATHERING_MAX_MS = 2000; // then send whatever candidates gathering produced
const DC_OPEN_MAX_MS = 15000; // answer applied but no data channel: the audio path is blocked
const DISCONNECTED_GRACE_MS = 5000; // "disconnected" may recover on its own
const HANDOFF_MAX_WAIT_MS = 15000; // the goodbye must not keep the page hanging
const TOOL_TIMEOUT_MS = 15000;
const GREETING_FALLBACK_MS = 1500; // if no session.created arrives after the channel opened
const TOOLS = new Set(['save_lead', 'trigger_call']);
const BENIGN_ERRORS = new Set(['response_cancel_not_active', 'conversation_already_has_active_response']);

export class CallwayError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const errorJson = (code, message) => JSON.stringify({ error: { code, message } });

async function readJson(resp) {
  try {
    return JSON.parse(await resp.text());
  } catch {
    return null;
  }
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

const expired = (token) => Date.now() / 1000 >= token.expires_at;

// A function_call item that finished (an interrupted response leaves it "incomplete").
const isFinishedCall = (item) => !!item && item.type === 'function_call' && (!item.status || item.status === 'completed');

export class RealtimeSession {
  /**
   * ui: { state(name, text?), status(text), peer(pc), micStream(s), remoteStream(s),
   *       caption({role, id, text?, delta?, final?}), event(type), end({state, code, message}),
   *       handoff({phoneMasked, callId}) }
   */
  constructor(ui) {
    this.ui = ui;
    this.closed = false;
    this.pc = null;
    this.dc = null;
    this.mic = null;
    this.token = null;
    this.timers = new Set();
    this.handledCalls = new Set(); // call_id handled once (arguments.done and output_item.done)
    this.callsByResponse = new Map(); // response_id → [promise of tool output sent]
    this.followedUp = new Set(); // response_ids whose tool outputs already got their response.create
    this.doneResponses = new Set();
    this.activeResponse = null;
    this.pendingCreate = false;
    this.audioPlaying = false;
    this.greeted = false;
    this.handoff = null; // {phoneMasked, callId} once trigger_call succeeded
    this.handoffArmed = false;
    this.goodbyeId = null;
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

    // 1. Microphone first: no token is minted for a visitor who refuses it.
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

    // 2. Ephemeral secret + web-session token from our backend.
    const token = await this.fetchToken();
    if (this.closed) return;
    if (expired(token)) throw new CallwayError('session_expired', MSG.sessionExpired);
    this.token = token;

    // 3. Peer connection; the data channel must exist before the offer.
    const pc = new RTCPeerConnection();
    this.pc = pc;
    this.ui.peer(pc);
    pc.ontrack = (ev) => this.ui.remoteStream(ev.streams[0] || new MediaStream([ev.track]));
    pc.onconnectionstatechange = () => this.onConnectionState();
    for (const track of mic.getAudioTracks()) pc.addTrack(track, mic);
    const dc = pc.createDataChannel('oai-events');
    this.dc = dc;
    dc.onopen = () => this.onOpen();
    dc.onclose = () => this.lost(MSG.connectionLost);
    dc.onerror = (ev) => console.warn('[callway] data channel error', ev.error || ev);
    dc.onmessage = (ev) => this.onMessage(ev.data);

    await pc.setLocalDescription(await pc.createOffer());
    await waitIceGathering(pc, ICE_GATHERING_MAX_MS);
    if (this.closed) return;
    if (expired(token)) throw new CallwayError('session_expired', MSG.sessionExpired);

    // 4. SDP offer → answer, authenticated with the ephemeral secret only.
    let resp;
    try {
      resp = await fetch(token.realtime_calls_url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token.client_secret}`, 'Content-Type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
    } catch (e) {
      console.warn('[callway] SDP exchange failed', e);
      throw new CallwayError('sdp_network', MSG.sdpFailed);
    }
    if (this.closed) return;
    if (!resp.ok) {
      const body = await readJson(resp);
      const err = (body && body.error) || {};
      console.warn('[callway] SDP exchange refused', resp.status, err.code, err.message);
      if (err.code === 'session_expired' || /expired/i.test(String(err.code || ''))) {
        throw new CallwayError('session_expired', MSG.sessionExpired);
      }
      throw new CallwayError(resp.status === 429 ? 'sdp_busy' : 'sdp_failed', resp.status === 429 ? MSG.sdpBusy : MSG.sdpFailed);
    }
    const answer = await resp.text();
    if (this.closed) return;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    } catch (e) {
      console.warn('[callway] invalid SDP answer', e);
      throw new CallwayError('sdp_invalid', MSG.sdpFailed);
    }
    this.later(() => {
      if (!this.closed && dc.readyState !== 'open') this.fail(new CallwayError('connection_failed', MSG.connectionFailed));
    }, DC_OPEN_MAX_MS);
  }

  async fetchToken() {
    let resp;
    try {
      resp = await fetch('api/realtime-token', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{}',
        cache: 'no-store',
        credentials: 'same-origin',
      });
    } catch {
      throw new CallwayError('token_network', MSG.tokenNetwork);
    }
    const body = await readJson(resp);
    if (!resp.ok) {
      const err = (body && body.error) || {};
      const fallback = resp.status === 429 ? MSG.rateLimited : MSG.tokenFailed;
      const message = typeof err.message === 'string' && err.message.trim() ? err.message : fallback;
      throw new CallwayError(err.code || `http_${resp.status}`, message);
    }
    const ok = body && typeof body.client_secret === 'string' && typeof body.session_token === 'string'
      && typeof body.realtime_calls_url === 'string' && typeof body.expires_at === 'number';
    if (!ok) throw new CallwayError('token_invalid', MSG.tokenFailed);
    return body;
  }

  onConnectionState() {
    const pc = this.pc;
    if (!pc || this.closed) return;
    const s = pc.connectionState;
    if (s === 'failed') {
      this.lost(this.dc && this.dc.readyState === 'open' ? MSG.connectionLost : MSG.connectionFailed);
    } else if (s === 'disconnected') {
      if (!this.discTimer) {
        this.discTimer = this.later(() => {
          this.discTimer = 0;
          if (pc.connectionState === 'disconnected' || pc.connectionState === 'failed') this.lost(MSG.connectionLost);
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
    this.ui.state('listening', MSG.connected);
    // Ask for the agent's greeting once the session exists (session.created), or shortly after open.
    this.later(() => this.greet(), GREETING_FALLBACK_MS);
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

  handle(ev) {
    switch (ev.type) {
      case 'session.created':
        this.greet();
        break;
      case 'input_audio_buffer.speech_started':
        this.greeted = true; // the visitor spoke first: no greeting needed any more
        this.ui.state('listening', MSG.listening);
        if (ev.item_id) this.ui.caption({ role: 'user', id: ev.item_id, text: '' });
        break;
      case 'input_audio_buffer.speech_stopped':
        this.ui.status(MSG.thinking);
        break;
      case 'conversation.item.input_audio_transcription.completed':
        this.ui.caption({ role: 'user', id: ev.item_id, text: ev.transcript || '', final: true });
        break;
      case 'conversation.item.input_audio_transcription.failed':
        this.ui.caption({ role: 'user', id: ev.item_id, text: '', final: true });
        break;
      case 'response.created': {
        const id = (ev.response && ev.response.id) || null;
        this.activeResponse = id || '_';
        this.greeted = true;
        if (this.handoffArmed && !this.goodbyeId) this.goodbyeId = id || '_';
        this.ui.state('speaking', this.handoffArmed ? MSG.goodbye : MSG.speaking);
        break;
      }
      case 'output_audio_buffer.started':
        this.audioPlaying = true;
        this.ui.state('speaking', this.handoffArmed ? MSG.goodbye : MSG.speaking);
        break;
      case 'output_audio_buffer.stopped':
      case 'output_audio_buffer.cleared':
        this.audioPlaying = false;
        if (this.goodbyeId && (!ev.response_id || ev.response_id === this.goodbyeId || this.goodbyeId === '_')) {
          this.finishHandoff();
        } else if (!this.activeResponse && !this.handoffArmed) {
          this.ui.state('listening', MSG.listening);
        }
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
      case 'response.function_call_arguments.done':
        this.toolCall(ev.call_id, ev.name, ev.arguments, ev.response_id);
        break;
      case 'response.output_item.done':
        if (isFinishedCall(ev.item)) {
          this.toolCall(ev.item.call_id, ev.item.name, ev.item.arguments, ev.response_id);
        }
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

  // ---- tool calls -------------------------------------------------------------------------

  toolCall(callId, name, args, responseId) {
    if (!callId || this.handledCalls.has(callId) || this.closed) return;
    this.handledCalls.add(callId);
    const rid = responseId || this.activeResponse || '_';
    if (!this.callsByResponse.has(rid)) this.callsByResponse.set(rid, []);
    this.callsByResponse.get(rid).push(this.runTool(callId, name, args));
    if (this.doneResponses.has(rid)) this.followUp(rid);
  }

  toolHeaders() {
    const headers = { Authorization: `Bearer ${this.token.session_token}`, 'Content-Type': 'application/json' };
    // Joins the tool calls to the trace the token request started (one trace per journey).
    const tp = this.token.traceparent;
    if (typeof tp === 'string' && /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(tp)) headers.traceparent = tp;
    return headers;
  }

  async runTool(callId, name, args) {
    let output;
    if (!TOOLS.has(name)) {
      output = errorJson('unknown_tool', `Outil inconnu : ${name}`);
    } else {
      this.ui.status(name === 'trigger_call' ? MSG.placingCall : MSG.savingLead);
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), TOOL_TIMEOUT_MS);
      try {
        const resp = await fetch(`api/tools/${name}`, {
          method: 'POST',
          headers: this.toolHeaders(),
          body: typeof args === 'string' ? args : JSON.stringify(args || {}),
          signal: ctl.signal,
          cache: 'no-store',
        });
        const text = await resp.text();
        output = text || errorJson(resp.ok ? 'empty_response' : `http_${resp.status}`, 'Réponse vide du service.');
        if (resp.ok && name === 'trigger_call') {
          let body = null;
          try {
            body = JSON.parse(text);
          } catch { /* keep defaults */ }
          this.handoff = {
            phoneMasked: (body && typeof body.phone_masked === 'string' && body.phone_masked) || '',
            callId: (body && body.call_id) || null,
            sessionToken: this.token.session_token,
          };
        }
      } catch (e) {
        const timeout = e && e.name === 'AbortError';
        output = errorJson(timeout ? 'tool_timeout' : 'network_error',
          timeout ? 'Le service ne répond pas.' : 'Le service est injoignable.');
      } finally {
        clearTimeout(timer);
      }
    }
    if (this.closed) return;
    this.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: callId, output } });
  }

  responseDone(response) {
    const rid = response.id || this.activeResponse || '_';
    if (!this.activeResponse || this.activeResponse === rid) this.activeResponse = null;
    this.doneResponses.add(rid);
    for (const item of response.output || []) {
      if (isFinishedCall(item)) this.toolCall(item.call_id, item.name, item.arguments, rid);
    }
    if (this.callsByResponse.has(rid)) {
      if (!this.audioPlaying) this.ui.state('listening'); // status keeps the tool's message
      this.followUp(rid);
    } else if (this.goodbyeId && (rid === this.goodbyeId || this.goodbyeId === '_')) {
      if (!this.audioPlaying) this.finishHandoff(); // else wait for output_audio_buffer.stopped
    } else if (!this.audioPlaying && !this.handoffArmed) {
      this.ui.state('listening', MSG.listening);
    }
    if (this.pendingCreate && !this.activeResponse) {
      this.pendingCreate = false;
      this.send({ type: 'response.create' });
    }
  }

  // After every output of a response's tool calls is sent: exactly one response.create.
  async followUp(rid) {
    if (this.followedUp.has(rid)) return;
    this.followedUp.add(rid);
    const calls = this.callsByResponse.get(rid);
    let seen = -1;
    while (seen !== calls.length) {
      seen = calls.length;
      await Promise.allSettled(calls.slice());
    }
    if (this.closed) return;
    if (this.handoff && !this.handoffArmed) {
      this.handoffArmed = true;
      this.later(() => this.finishHandoff(), HANDOFF_MAX_WAIT_MS);
    }
    if (this.activeResponse) this.pendingCreate = true;
    else this.send({ type: 'response.create' });
  }

  serverError(err) {
    console.warn('[callway] realtime error event', err.type, err.code, err.message);
    if (BENIGN_ERRORS.has(err.code)) return;
    if (err.code === 'session_expired') {
      if (this.handoff) this.finishHandoff(); // the phone call is already on its way
      else this.fail(new CallwayError('session_expired', MSG.sessionExpired));
    }
    else if (err.code === 'beta_api_shape_disabled') this.fail(new CallwayError('realtime_error', MSG.generic));
    // other errors are recoverable: the session stays open
  }

  // ---- ending -----------------------------------------------------------------------------

  finishHandoff() {
    const handoff = this.handoff;
    if (!handoff || !this.teardown()) return;
    this.ui.handoff(handoff);
  }

  // The link to the agent broke. After a successful trigger_call the phone call goes on anyway.
  lost(message) {
    if (this.closed) return;
    if (this.handoff) this.finishHandoff();
    else this.fail(new CallwayError('connection_lost', message));
  }

  fail(err) {
    if (!this.teardown()) return;
    console.warn('[callway] session ended:', err.code);
    this.ui.end({ state: 'error', code: err.code, message: err.message });
  }

  stop() {
    if (!this.teardown()) return;
    this.ui.end({ state: 'idle', code: 'stopped', message: MSG.stopped });
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
