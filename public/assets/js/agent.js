// Callway voice demo: wires the page (#btn-voice, #btn-stop, #voice-status, #captions, #audio-wave,
// #phone-leg) to a RealtimeSession. Loaded as an ES module; no inline code (CSP default-src 'self').
// The voice client (session.js) and the phone-leg follower (phone-leg.js) load on the first click:
// visitors who never talk to the agent do not download them (page weight budget, e2e/page.test.mjs).
import { AudioMeter } from './meter.js';
import { MSG } from './messages.js';
import { requested } from './net.js';

let stopFollowing = () => {};

const $ = (id) => document.getElementById(id);
const btn = $('btn-voice');
const stopBtn = $('btn-stop');
const statusEl = $('voice-status');
const captionsEl = $('captions');
const captionsEmpty = $('captions-empty');
const legEl = $('phone-leg');
const legNumber = $('phone-leg-number');
const legTimeline = $('phone-leg-timeline');
const audioEl = $('remote-audio');
const meter = new AudioMeter($('audio-wave'));

const ACTIVE = new Set(['connecting', 'listening', 'speaking']);
const BUSY = 'ending'; // the page is asking the server how the conversation ended
const MAX_CAPTIONS = 40;
const PENDING_CAPTION_MS = 10000;
let state = 'idle';
let session = null;
let currentPc = null;
let micStream = null;
const events = [];
const captions = new Map(); // "role:item_id" → element
let anonymous = 0;

// Read-only debugging hook (used by the browser tests; exposes nothing secret).
window.callwayDebug = Object.freeze({
  get state() { return state; },
  get pc() { return currentPc; },
  remoteLevel: () => meter.level('remote'),
  micLevel: () => meter.level('mic'),
  events: () => events.slice(),
  // True when every microphone track is disabled (the page mutes it as soon as the call is placed).
  micMuted: () => !!micStream && micStream.getAudioTracks().length > 0
    && micStream.getAudioTracks().every((t) => !t.enabled),
  requests: () => requested(),
});

function setStatus(text) {
  if (text != null && statusEl.textContent !== text) statusEl.textContent = text;
}

function setState(next, text) {
  state = next;
  const active = ACTIVE.has(next);
  btn.dataset.state = next;
  btn.setAttribute('aria-pressed', String(active));
  btn.setAttribute('aria-label', active ? 'Terminer la conversation avec l’agent' : "Parler à l'agent Callway");
  stopBtn.disabled = !active;
  btn.disabled = next === BUSY;
  meter.setState(next);
  setStatus(text);
}

function caption({ role, id, text, delta, final }) {
  const key = `${role}:${id || `anon${anonymous}`}`;
  let line = captions.get(key);
  if (!line) {
    if (final && !text) return;
    line = document.createElement('p');
    line.className = `caption-line ${role === 'agent' ? 'caption-agent' : 'caption-user'}`;
    const who = document.createElement('span');
    who.className = 'caption-who';
    who.textContent = role === 'agent' ? 'Agent' : 'Vous';
    const body = document.createElement('span');
    body.className = 'caption-text';
    line.append(who, body);
    captionsEl.append(line);
    captions.set(key, line);
    captionsEmpty.hidden = true;
    if (role === 'user' && !text && !delta) {
      // Placeholder keeps the visitor's turn in order; dropped if no transcript ever comes.
      setTimeout(() => {
        if (captions.get(key) === line && !line.lastElementChild.textContent) {
          line.remove();
          captions.delete(key);
        }
      }, PENDING_CAPTION_MS);
    }
    while (captions.size > MAX_CAPTIONS) {
      const [oldKey, oldLine] = captions.entries().next().value;
      oldLine.remove();
      captions.delete(oldKey);
    }
  }
  const body = line.lastElementChild;
  if (delta) body.textContent += delta;
  else if (typeof text === 'string' && (text || final)) body.textContent = text;
  line.classList.toggle('caption-pending', !final && !body.textContent);
  if (final) {
    if (!id) anonymous += 1;
    if (!body.textContent) {
      line.remove();
      captions.delete(key);
    }
  }
  captionsEl.scrollTop = captionsEl.scrollHeight;
}

function clearCaptions() {
  for (const line of captions.values()) line.remove();
  captions.clear();
  captionsEmpty.hidden = false;
}

// Phone-leg panel: shown after the hand-off, rebuilt from each timeline answer.
const timeOf = (at) => at.toLocaleTimeString('fr-FR', { hour: '2-digit', minute: '2-digit', second: '2-digit' });

function legLine(label, at, className = 'leg-event') {
  const li = document.createElement('li');
  li.className = className;
  li.textContent = at ? `${timeOf(at)} · ${label}` : label;
  return li;
}

function renderPhoneLeg(webEndedAt, { lines, final }) {
  const items = [legLine('Session web terminée', webEndedAt)];
  for (const { label, at } of lines) items.push(legLine(label, at));
  if (final) {
    const li = legLine(final.label, final.at, 'leg-event leg-final');
    li.dataset.outcome = final.outcome;
    items.push(li);
  }
  legTimeline.replaceChildren(...items);
  legTimeline.scrollTop = legTimeline.scrollHeight;
}

function showPhoneLeg(info) {
  const { phoneMasked } = info;
  if (phoneMasked) {
    const num = document.createElement('strong');
    num.className = 'whitespace-nowrap font-semibold text-white';
    num.textContent = phoneMasked;
    legNumber.replaceChildren('Nous vous appelons au ', num);
  } else {
    legNumber.textContent = 'Nous vous appelons.';
  }
  captionsEl.hidden = true;
  const webEndedAt = new Date();
  renderPhoneLeg(webEndedAt, { lines: [], final: null });
  legEl.hidden = false;
  stopFollowing();
  let cancelled = false;
  stopFollowing = () => { cancelled = true; };
  import('./phone-leg.js').then(({ followPhoneLeg }) => {
    if (!cancelled) stopFollowing = followPhoneLeg(info, (view) => renderPhoneLeg(webEndedAt, view));
  }).catch((e) => console.warn('[callway] phone-leg follower unavailable', e && e.name));
}

function releaseAudio() {
  meter.detachAll();
  audioEl.pause();
  audioEl.srcObject = null;
}

const ui = {
  state: (name, text) => setState(name, text),
  status: (text) => setStatus(text),
  peer: (pc) => { currentPc = pc; },
  micStream: (stream) => {
    micStream = stream;
    meter.attach('mic', stream);
  },
  remoteStream: (stream) => {
    audioEl.srcObject = stream;
    audioEl.play().catch(() => {}); // autoplay is allowed: the session started from a click
    meter.attach('remote', stream);
  },
  caption,
  event: (type) => {
    events.push(type);
    if (events.length > 500) events.shift();
  },
  end: ({ state: next, message }) => {
    releaseAudio();
    setState(next, message);
    session = null;
  },
  handoff: (info) => {
    releaseAudio();
    setState('ended', MSG.handoff);
    showPhoneLeg(info);
    session = null;
  },
};

let attempts = 0; // a stop while session.js is still loading cancels that start

async function start() {
  meter.ensureContext(); // inside the click: lets the AudioContext start
  clearCaptions();
  stopFollowing();
  legEl.hidden = true;
  captionsEl.hidden = false;
  currentPc = null;
  micStream = null;
  const attempt = ++attempts;
  setState('connecting', MSG.connecting);
  let RealtimeSession;
  try {
    ({ RealtimeSession } = await import('./session.js'));
  } catch (e) {
    console.warn('[callway] voice client unavailable', e && e.name);
    if (attempt === attempts) setState('error', MSG.network);
    return;
  }
  if (attempt !== attempts) return;
  import('./phone-leg.js').catch(() => {}); // ready before a hand-off
  const s = new RealtimeSession(guarded(() => session === s));
  session = s;
  s.start();
}

// The ui callbacks of one session; they do nothing once that session is no longer the current one
// (it ended, or the visitor started another while it was still closing).
function guarded(isCurrent) {
  const out = {};
  for (const [name, fn] of Object.entries(ui)) out[name] = (...args) => (isCurrent() ? fn(...args) : undefined);
  return out;
}

function stop() {
  attempts += 1;
  if (session) session.stop();
  else setState('idle', MSG.stopped);
}

// A pointer or the keyboard reaching the button announces a click: fetch the voice client then.
const warm = () => import('./session.js').catch(() => {});
for (const type of ['pointerenter', 'focus', 'touchstart']) btn.addEventListener(type, warm, { once: true, passive: true });
btn.addEventListener('click', () => (ACTIVE.has(state) ? stop() : start()));
stopBtn.addEventListener('click', stop);
window.addEventListener('pagehide', () => session && session.stop());
setState('idle', null);
