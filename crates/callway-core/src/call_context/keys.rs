//! The shared store's whole key space, in one place: every key any service reads or writes is
//! built here, so two services cannot disagree on a name and a reader sees at a glance what is
//! kept. Nothing personal or peer-chosen goes into a key as is: phone numbers, client addresses
//! and ids chosen by a peer (Telnyx event ids, OpenAI function call ids) are hashed
//! ([`key_hash`]); our own random ids (`cx_…`, `st_…`, `ws_…`) are used as they are.
//!
//! | prefix | what | lifetime |
//! |---|---|---|
//! | `callway:ctx:<ref>` | the call context (JSON) | [`super::CONTEXT_TTL`] |
//! | `callway:stream:<token>` | one-time media stream token → call ref | context TTL |
//! | `callway:timeline:<ref>` | the phone leg's timeline (list) | [`super::TIMELINE_TTL`] |
//! | `callway:owner:<ref>` | web session that asked for the call | timeline TTL |
//! | `callway:flag:<ref>:<name>` | per-call facts ([`super::CallFlag`]) | context TTL |
//! | `callway:dial:<ref>` | the dial's state ([`super::DialState`]) | context TTL |
//! | `callway:voicemail:<ref>` | the voicemail action was started (claim) | context TTL |
//! | `callway:qualification:<ref>` | what the phone agent recorded (JSON) | context TTL |
//! | `callway:transfer:<ref>` | a warm transfer's state (`dialing`, `bridged`, `failed`) and the human leg's id | context TTL |
//! | `callway:pending_stream:<ref>` | an answered incoming call's stream token, until its stream starts | context TTL |
//! | `callway:callback:session:<ws>` | the session's one callback (claim, holder = lead) | 24 h |
//! | `callway:callback:cooldown:<hash(number)>` | cooldown per number (claim, holder = lead) | cooldown |
//! | `callway:callback:day:<date>` | callbacks dialled that UTC day (counter) | 2 days |
//! | `callway:webhook:done:<hash(event id)>` | a webhook whose effects are stored | 24 h |
//! | `callway:webhook:busy:<hash(event id)>` | a webhook being handled (lock, holder = request) | 30 s |
//! | `callway:web:active` | live web sessions by deadline (sorted set) | — |
//! | `callway:web:<ws>` / `lease:<ws>` / `turns:<ws>` | a web call's record, sideband lease, transcript | record |
//! | `callway:web:fc:<ws>:<hash(call id)>` | one function call's claim | record |
//! | `callway:limit:<kind>:<scope>:<who>:<hour>` | hourly limit counters | 2 h |
//! | `callway:{outbox,retry}:due` | queued jobs by due time (sorted set): business webhooks, callbacks to retry | — |
//! | `callway:{outbox,retry}:msg:<id>` | one job: body until done, state | 7 days |
//! | `callway:{outbox,retry}:dead` | ids of jobs that failed every attempt (list) | 7 days |

use super::CallRef;
use crate::session_token::WebSessionId;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Key material for a value that must not appear in a key (a number, an address, an id chosen
/// by a peer): the first 128 bits of its SHA-256, URL-safe.
pub fn key_hash(value: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

pub fn context(r: &CallRef) -> String {
    format!("callway:ctx:{}", r.as_str())
}
pub fn stream_token(token: &str) -> String {
    format!("callway:stream:{token}")
}
pub fn timeline(r: &CallRef) -> String {
    format!("callway:timeline:{}", r.as_str())
}
pub fn owner(r: &CallRef) -> String {
    format!("callway:owner:{}", r.as_str())
}
pub fn flag(r: &CallRef, name: &str) -> String {
    format!("callway:flag:{}:{name}", r.as_str())
}
pub fn dial(r: &CallRef) -> String {
    format!("callway:dial:{}", r.as_str())
}
pub fn transfer(r: &CallRef) -> String {
    format!("callway:transfer:{}", r.as_str())
}
pub fn pending_stream(r: &CallRef) -> String {
    format!("callway:pending_stream:{}", r.as_str())
}
pub fn qualification(r: &CallRef) -> String {
    format!("callway:qualification:{}", r.as_str())
}
pub fn voicemail(r: &CallRef) -> String {
    format!("callway:voicemail:{}", r.as_str())
}
pub fn callback_session(ws: &str) -> String {
    format!("callway:callback:session:{ws}")
}
pub fn callback_cooldown(e164: &str) -> String {
    format!("callway:callback:cooldown:{}", key_hash(e164))
}
pub fn callback_day(day: chrono::NaiveDate) -> String {
    format!("callway:callback:day:{}", day.format("%Y-%m-%d"))
}
pub fn webhook_done(event_id: &str) -> String {
    format!("callway:webhook:done:{}", key_hash(event_id))
}
pub fn webhook_busy(event_id: &str) -> String {
    format!("callway:webhook:busy:{}", key_hash(event_id))
}
pub const WEB_ACTIVE: &str = "callway:web:active";
pub fn web_record(ws: &WebSessionId) -> String {
    format!("callway:web:{}", ws.as_str())
}
pub fn web_lease(ws: &WebSessionId) -> String {
    format!("callway:web:lease:{}", ws.as_str())
}
pub fn web_turns(ws: &WebSessionId) -> String {
    format!("callway:web:turns:{}", ws.as_str())
}
pub fn web_function_call(ws: &WebSessionId, call_id: &str) -> String {
    format!("callway:web:fc:{}:{}", ws.as_str(), key_hash(call_id))
}
/// The durable queues (`outbound::queue`): `outbox` (business webhooks), `retry` (callbacks to
/// try again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Outbox,
    Retry,
}

impl Queue {
    fn name(self) -> &'static str {
        match self {
            Queue::Outbox => "outbox",
            Queue::Retry => "retry",
        }
    }
    pub fn due(self) -> String {
        format!("callway:{}:due", self.name())
    }
    pub fn dead(self) -> String {
        format!("callway:{}:dead", self.name())
    }
    pub fn message(self, id: &str) -> String {
        format!("callway:{}:msg:{id}", self.name())
    }
}
/// `who` is already hashed by the caller (an address or a network).
pub fn limit(kind: &str, scope: &str, who: &str, window: i64) -> String {
    format!("callway:limit:{kind}:{scope}:{who}:{window}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_chosen_and_personal_values_never_appear_in_keys() {
        let number = "+33612345678";
        assert!(!callback_cooldown(number).contains("612345678"));
        let event = "0ccc7b54-4df3-4bcb-a65a-3da1ecc997d7";
        assert!(!webhook_done(event).contains(event));
        assert_ne!(webhook_done(event), webhook_busy(event));
        assert_eq!(key_hash("a"), key_hash("a"));
        assert_ne!(key_hash("a"), key_hash("b"));
    }
}
