//! What the services share about a callback, through one store (Redis; memory in the
//! single-process sandbox): the call context the phone leg needs, the one-time stream token, the
//! claims that keep callbacks in check, per-call facts (flags), the dial's state and the
//! timeline the page shows. Every key is built in [`keys`].
//!
//! What happens when Redis restarts with nothing (compose keeps an AOF, but a store can be
//! lost): contexts, stream tokens and flags of live calls are gone, so a call whose media socket
//! connects afterwards is refused politely (the bridge has Telnyx apologise and hang up) and its
//! webhooks are acknowledged without effect; claims and cooldowns are rebuilt from PostgreSQL,
//! where a lead's callback status is set with a conditional update before any dial (see
//! `lead_store::LeadStore::claim_callback`), so a lost store never rings a number twice.

mod claims;
mod dial;
mod flags;
pub mod keys;
mod store;
mod timeline;

pub use claims::Claimed;
pub use dial::DialState;
pub use flags::{AmdVerdict, CallFlag};
pub use keys::key_hash;
pub use store::{ContextError, ContextStore, MemoryStore, Process};
pub use timeline::{
    phone_transcript, TimelineEvent, TimelineKind, MAX_TIMELINE_EVENTS, TIMELINE_TTL,
};

use crate::lead::LeadId;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a call context lives: ringing + a long call.
pub const CONTEXT_TTL: Duration = Duration::from_secs(45 * 60);

/// Random URL-safe token with a prefix, e.g. `cx_…`.
pub fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 18];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system random source is unavailable");
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Opaque id of one callback; the only thing Telnyx carries (`client_state`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallRef(String);

impl CallRef {
    pub fn generate() -> Self {
        Self(random_id("cx_"))
    }

    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.starts_with("cx_")
            && s.len() <= 64
            && s[3..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `client_state` (base64, as Telnyx requires) for a dial: the call ref and the lead, so
    /// that a webhook still finds the lead to record the outcome when the shared store has lost
    /// the call's context (a Redis restarted empty).
    pub fn to_client_state(&self, lead: LeadId) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}|{lead}", self.0))
    }

    /// `client_state` for the human's leg of a warm transfer of this call.
    pub fn to_transfer_state(&self, lead: LeadId) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}|{lead}|transfer", self.0))
    }

    /// Whether a `client_state` names the human's leg of a transfer (not the callee's call).
    pub fn is_transfer_leg(state: &str) -> bool {
        decode_client_state(state)
            .and_then(|(_, rest)| rest)
            .is_some_and(|rest| rest.ends_with("|transfer"))
    }

    /// The call ref of a `client_state` we wrote; `None` for anything else.
    pub fn from_client_state(state: &str) -> Option<Self> {
        Self::parse(decode_client_state(state)?.0.as_str())
    }

    /// The lead a `client_state` names, if it is one of ours.
    pub fn lead_from_client_state(state: &str) -> Option<LeadId> {
        let (call_ref, lead) = decode_client_state(state)?;
        Self::parse(&call_ref)?;
        LeadId::parse(&lead?)
    }
}

fn decode_client_state(state: &str) -> Option<(String, Option<String>)> {
    if state.len() > 512 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(state.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    Some(match text.split_once('|') {
        Some((r, lead)) => (r.to_owned(), Some(lead.to_owned())),
        None => (text, None),
    })
}

fn first_attempt() -> u8 {
    1
}

/// Who called whom, which decides the phone agent's instructions and what the call updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// We called a lead back (trigger_call or a retry).
    #[default]
    Callback,
    /// The person called our number from a number one of our recent leads gave: the agent
    /// continues that conversation (caller ID can be spoofed: it never reads personal data back).
    InboundKnown,
    /// An unknown number called: Callway's generic agent presents the product. `lead_id` then
    /// names no lead.
    InboundUnknown,
}

/// Everything the bridge and the webhooks need, written by `trigger_call`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct CallContext {
    pub call_ref: CallRef,
    /// Which attempt of the lead's callback this call is (1 for the first; retries count up).
    #[serde(default = "first_attempt")]
    pub attempt: u8,
    /// A callback we placed, or a call the person made to us.
    #[serde(default)]
    pub kind: CallKind,
    pub lead_id: LeadId,
    pub first_name: String,
    /// The web conversation, replayed to the phone agent as conversation items (user content).
    #[serde(default)]
    pub web_transcript: Vec<crate::transcript::Turn>,
    pub web_session_id: String,
    pub phone_masked: String,
    /// Checked by the bridge against Telnyx's `stream_auth_token`.
    pub stream_secret: String,
    pub call_control_id: Option<String>,
    /// W3C `traceparent` of the web request that asked for the call, so the phone leg joins its trace.
    pub traceparent: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CallContext({}, lead {})",
            self.call_ref.as_str(),
            self.lead_id
        )
    }
}

/// Key material for a phone number: never the number itself.
pub fn phone_key(e164: &str) -> String {
    key_hash(e164)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_state_round_trips_and_refuses_other_content() {
        let r = CallRef::generate();
        let lead = LeadId::new();
        let state = r.to_client_state(lead);
        assert_eq!(CallRef::from_client_state(&state), Some(r.clone()));
        assert_eq!(CallRef::lead_from_client_state(&state), Some(lead));
        let bare = base64::engine::general_purpose::STANDARD.encode(r.as_str());
        assert_eq!(CallRef::from_client_state(&bare), Some(r));
        assert_eq!(CallRef::lead_from_client_state(&bare), None);
        assert_eq!(CallRef::from_client_state("not base64!"), None);
        assert_eq!(
            CallRef::from_client_state(&base64::engine::general_purpose::STANDARD.encode("x")),
            None
        );
        assert!(!phone_key("+33612345678").contains("612345678"));
    }
}
