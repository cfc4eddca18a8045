// The phone leg's event kinds, as the server writes them (Rust: callway_core::call_context::
// TimelineKind; a Rust test keeps this list equal to the enum, in the same order).
export const TIMELINE_KINDS = Object.freeze(['dialing', 'ringing', 'answered', 'voicemail', 'agent', 'callee', 'ended']);
