// Callway voice demo: wires the page (#btn-voice, #btn-stop, #voice-status, #captions, #audio-wave,
// #phone-leg) to a RealtimeSession. Loaded as an ES module; no inline code (CSP default-src 'self').
import { RealtimeSession } from './session.js';
import { AudioMeter } from './meter.js';
import { MSG } from './messages.js';
import { followPhoneLeg } from './phone-leg.js';

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
const MAX_CAPTIONS = 40;
const PENDING_CAPTION_MS = 10000;
let state = 'idle';
let session = null;
let currentPc = null;
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

// Phone-leg panel: shown after the hand-off; the timeline can receive later events.
export function addPhoneLegEvent(label, at = new Date()) {
  const li = document.createElement('li');
  li.className = 'leg-event';
  const time = at.toLocaleTimeString('fr-FR', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  li.textContent = `${time} · ${label}`;
  legTimeline.append(li);
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
  legTimeline.replaceChildren();
  addPhoneLegEvent('Session web terminée');
  legEl.hidden = false;
  stopFollowing();
  stopFollowing = followPhoneLeg(info, (label, ev) => addPhoneLegEvent(label, new Date(ev.at)));
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
  micStream: (stream) => meter.attach('mic', stream),
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

function start() {
  meter.ensureContext(); // inside the click: lets the AudioContext start
  clearCaptions();
  stopFollowing();
  legEl.hidden = true;
  captionsEl.hidden = false;
  currentPc = null;
  session = new RealtimeSession(ui);
  session.start();
}

function stop() {
  if (session) session.stop();
  else setState('idle', MSG.stopped);
}

btn.addEventListener('click', () => (ACTIVE.has(state) ? stop() : start()));
stopBtn.addEventListener('click', stop);
window.addEventListener('pagehide', () => session && session.stop());
setState('idle', null);
