// Follows the phone leg after the hand-off: polls the call's timeline (ringing, answered, what each
// side said, hang-up) with the web-session token, and hands each new event to `onEvent` once.

const POLL_MS = 1000;
const MAX_MS = 30 * 60 * 1000;

const OUTCOMES = {
  completed: 'Appel terminé',
  voicemail: 'Appel terminé (messagerie)',
  no_answer: 'Pas de réponse',
  busy: 'Ligne occupée',
  failed: "L'appel n'a pas abouti",
};

/** French label of one timeline event, or null for kinds the page does not show. */
export function describe(event) {
  switch (event.kind) {
    case 'dialing': return 'Appel en cours de lancement';
    case 'ringing': return 'Votre téléphone sonne';
    case 'answered': return 'Appel décroché';
    case 'voicemail': return "Messagerie détectée : l'agent laisse un court message";
    case 'agent': return `Agent : « ${event.text || ''} »`;
    case 'callee': return `Vous : « ${event.text || ''} »`;
    case 'ended': return OUTCOMES[event.text] || 'Appel terminé';
    default: return null;
  }
}

/**
 * Starts polling; returns a stop function. Errors are retried silently until MAX_MS: the panel
 * already tells the visitor that their phone will ring.
 */
export function followPhoneLeg({ callId, sessionToken }, onEvent) {
  if (!callId || !sessionToken) return () => {};
  let seen = 0;
  let stopped = false;
  let timer = null;
  const started = Date.now();
  const tick = async () => {
    if (stopped) return;
    let ended = false;
    try {
      const resp = await fetch(`api/calls/${encodeURIComponent(callId)}/events`, {
        headers: { Authorization: `Bearer ${sessionToken}` },
        cache: 'no-store',
      });
      if (resp.ok) {
        const body = await resp.json();
        const events = Array.isArray(body.events) ? body.events : [];
        for (const ev of events.slice(seen)) {
          const label = describe(ev);
          if (label) onEvent(label, ev);
        }
        seen = Math.max(seen, events.length);
        ended = body.ended === true;
      } else if (resp.status === 401 || resp.status === 404) {
        ended = true; // session gone or call unknown: nothing more to show
      }
    } catch { /* network hiccup: try again */ }
    if (!ended && !stopped && Date.now() - started < MAX_MS) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}
