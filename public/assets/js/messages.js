// French texts shown in #voice-status. Keep them short: they are read aloud by screen readers.
const minutes = (secs) => {
  const n = Math.max(1, Math.round(Number(secs) / 60) || 5);
  return `${n} minute${n > 1 ? 's' : ''}`;
};

export const MSG = Object.freeze({
  idle: "Touchez le micro pour parler à l'agent.",
  micPrompt: 'Autorisez l’accès au micro pour commencer…',
  connecting: "Connexion à l'agent…",
  connected: 'Connecté. Dites bonjour !',
  listening: 'Je vous écoute…',
  thinking: 'Un instant…',
  speaking: "L'agent parle…",
  savingLead: 'Enregistrement de vos coordonnées…',
  placingCall: "Préparation de l'appel…",
  goodbye: "L'agent termine la conversation…",
  handoff: "C'est parti : votre téléphone va sonner.",
  ending: 'Fin de la conversation…',
  stopped: 'Conversation terminée. Touchez le micro pour recommencer.',
  micDenied: 'Accès au micro refusé. Autorisez le micro pour ce site dans votre navigateur, puis réessayez.',
  micMissing: 'Aucun micro détecté. Branchez un micro ou un casque, puis réessayez.',
  micBusy: 'Votre micro est déjà utilisé par une autre application. Libérez-le, puis réessayez.',
  micUnsupported: "Votre navigateur ne permet pas d'utiliser le micro sur cette page.",
  webrtcUnsupported: 'Votre navigateur ne prend pas en charge les conversations vocales en ligne.',
  // POST api/realtime/session refusals, by error code (see session.js).
  startFailed: 'Impossible de démarrer la conversation pour le moment. Réessayez dans un instant.',
  network: 'Le service est injoignable. Vérifiez votre connexion internet, puis réessayez.',
  offerRefused: "Votre navigateur n'a pas pu préparer la liaison audio. Rechargez la page, puis réessayez.",
  rateLimited: 'Trop de tentatives en peu de temps. Patientez une minute, puis réessayez.',
  networkRateLimited: 'Trop de conversations démarrées depuis votre réseau. Réessayez dans quelques minutes.',
  demoBusy: 'La démo est très demandée, réessayez dans un instant.',
  upstreamBusy: 'Le service vocal est saturé. Réessayez dans quelques minutes.',
  upstreamTimeout: 'Le service vocal met trop de temps à répondre. Réessayez dans un instant.',
  upstreamDown: 'Le service vocal est momentanément indisponible. Réessayez dans quelques instants.',
  sdpFailed: 'La connexion au service vocal a échoué. Réessayez dans un instant.',
  connectionFailed: "Impossible d'établir la liaison audio. Votre réseau bloque peut-être les appels en ligne.",
  // How a conversation ended (GET api/realtime/session).
  connectionLost: "La connexion avec l'agent a été perdue. Touchez le micro pour relancer la conversation.",
  timeLimit: (secs) => `La démo est limitée à ${minutes(secs)} par conversation. Touchez le micro pour en démarrer une nouvelle.`,
  controlLost: "La conversation n'a pas pu être poursuivie. Touchez le micro pour réessayer.",
  sessionExpired: 'Votre session a expiré. Touchez le micro pour en démarrer une nouvelle.',
  generic: 'Une erreur inattendue est survenue. Réessayez dans un instant.',
});
