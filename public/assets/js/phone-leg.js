// Follows the phone leg after the hand-off: polls the call's timeline (ringing, answered, what each
// side said, hang-up) with the web-session token. Each answer carries the whole timeline, so the
// view is rebuilt from it every time: events in time order whatever order they arrive in, and one
// final line once the call is over, after which polling stops.
import { request } from './net.js';
import { TIMELINE_KINDS } from './timeline-kinds.js';

const POLL_MS = 1000;
const MAX_MS = 30 * 60 * 1000;

const OUTCOMES = {
  completed: 'Appel terminé',
  voicemail: 'Appel terminé (messagerie)',
  no_answer: 'Pas de réponse',
  busy: 'Ligne occupée',
  failed: "L'appel n'a pas abouti",
};
const UNFOLLOWED = 'Suivi de l’appel indisponible';
const TERMINAL = new Set(['ended']);

/** French label of one timeline event, or null for kinds the page does not show. */
export function describe(event) {
  if (!TIMELINE_KINDS.includes(event.kind)) return null;
  switch (event.kind) {
    case 'dialing': return 'Appel en cours de lancement';
    case 'ringing': return 'Votre téléphone sonne';
    case 'answered': return 'Appel décroché';
    case 'voicemail': return "Messagerie détectée : l'agent laisse un court message";
    case 'agent': return `Agent : « ${event.text || ''} »`;
    case 'callee': return `Vous : « ${event.text || ''} »`;
    case 'ended': return OUTCOMES[event.text] || OUTCOMES.completed;
    default: return null;
  }
}

const outcomeOf = (ev) => (OUTCOMES[ev.text] ? ev.text : 'completed');

/**
 * The panel's content for one timeline answer: `lines` sorted by `at` (stable; an unreadable time
 * sorts last), without the terminal events, and `final` ({label, outcome}) once the call is over.
 */
export function timelineView(events, ended) {
  const list = (Array.isArray(events) ? events : [])
    .filter((ev) => ev && typeof ev.kind === 'string')
    .map((ev, i) => {
      const t = Date.parse(ev.at);
      return { ev, i, t: Number.isFinite(t) ? t : Infinity };
    })
    .sort((a, b) => (a.t === b.t ? a.i - b.i : a.t < b.t ? -1 : 1));
  const lines = [];
  let last = null;
  for (const { ev, t } of list) {
    if (TERMINAL.has(ev.kind)) {
      last = { ev, t };
      continue;
    }
    const label = describe(ev);
    if (label) lines.push({ label, at: Number.isFinite(t) ? new Date(t) : null });
  }
  let final = null;
  if (last) {
    final = { label: describe(last.ev), outcome: outcomeOf(last.ev), at: Number.isFinite(last.t) ? new Date(last.t) : null };
  } else if (ended === true) {
    final = { label: OUTCOMES.completed, outcome: 'completed', at: null };
  }
  return { lines, final };
}

/**
 * Starts polling; `onView(view)` gets every new view (see timelineView). Returns a stop function.
 * Network errors are retried until MAX_MS: the panel already says the phone will ring. A 401/404
 * (session gone, call unknown) or MAX_MS ends the follow-up with an "unavailable" final line.
 */
export function followPhoneLeg({ callId, sessionToken, traceparent }, onView) {
  if (!callId || !sessionToken) return () => {};
  let stopped = false;
  let timer = null;
  let shown = '';
  const started = Date.now();
  const headers = { Authorization: `Bearer ${sessionToken}` };
  if (traceparent) headers.traceparent = traceparent;
  const show = (view) => {
    const key = JSON.stringify(view);
    if (key !== shown) {
      shown = key;
      onView(view);
    }
  };
  let lastView = { lines: [], final: null };
  const tick = async () => {
    if (stopped) return;
    let done = false;
    try {
      const resp = await request(`api/calls/${encodeURIComponent(callId)}/events`, { headers, timeoutMs: 10000 });
      if (resp.ok) {
        const body = await resp.json();
        if (stopped) return;
        lastView = timelineView(body && body.events, body && body.ended);
        show(lastView);
        done = lastView.final !== null;
      } else if (resp.status === 401 || resp.status === 404) {
        done = true;
        show({ ...lastView, final: { label: UNFOLLOWED, outcome: 'unknown', at: null } });
      }
    } catch { /* network hiccup or unreadable body: try again */ }
    if (done || stopped) return;
    if (Date.now() - started >= MAX_MS) {
      show({ ...lastView, final: { label: UNFOLLOWED, outcome: 'unknown', at: null } });
      return;
    }
    timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}
