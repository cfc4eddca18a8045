//! The web voice calls the server owns: which OpenAI call (`rtc_…`) belongs to which web session,
//! from which client, until when; who holds its sideband (a lease any instance can take over);
//! what was said; how it ended. Kept in the shared store so any instance can serve any call.
//!
//! Keys (`call_context::keys`, all under `callway:web:`): `<ws>` the record (JSON), `active` a
//! sorted set of the live sessions scored by their deadline (the concurrency cap counts it),
//! `lease:<ws>` the sideband holder, `turns:<ws>` the transcript, `fc:<ws>:<call_id>` one claim
//! per function call.

use crate::call_context::{CallRef, ContextError, ContextStore};
use crate::client_addr::ClientAddr;
use crate::session_token::WebSessionId;
use crate::transcript::{Turn, MAX_TURNS};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// OpenAI's id of a Realtime call (`rtc_…`, from the `Location` header).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RtcCallId(String);

impl RtcCallId {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.starts_with("rtc_")
            && s.len() <= 128
            && s[4..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ok.then(|| RtcCallId(s.to_owned()))
    }

    /// From a `Location` header (`/v1/realtime/calls/rtc_…`): its last path segment.
    pub fn from_location(location: &str) -> Option<Self> {
        let path = location.split(['?', '#']).next()?;
        Self::parse(path.trim_end_matches('/').rsplit('/').next()?)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RtcCallId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        RtcCallId::parse(&s).ok_or_else(|| "not a realtime call id".into())
    }
}

impl From<RtcCallId> for String {
    fn from(id: RtcCallId) -> String {
        id.0
    }
}

/// Why a web call ended (the page shows a message for each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebCallEnd {
    /// A callback was requested: the phone takes over.
    Handoff,
    /// The demo's maximum length was reached.
    TimeLimit,
    /// The server could not control the call (sideband refused or lost for good).
    ControlLost,
    /// The visitor or OpenAI ended it.
    Closed,
}

/// What the page needs to follow the phone leg after a hand-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    pub call_ref: CallRef,
    pub phone_masked: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebCall {
    pub session: WebSessionId,
    pub rtc_call_id: RtcCallId,
    pub client: ClientAddr,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub deadline: chrono::DateTime<chrono::Utc>,
    /// W3C traceparent of the request that opened the call (one trace per journey).
    pub traceparent: Option<String>,
    pub ended: Option<WebCallEnd>,
    pub handoff: Option<Handoff>,
}

/// How long a record outlives its deadline (the page reads how it ended; the timeline is longer).
const RECORD_GRACE: Duration = Duration::from_secs(3600);
use crate::call_context::keys;
const ACTIVE_KEY: &str = keys::WEB_ACTIVE;
use keys::{
    web_function_call as fc_key, web_lease as lease_key, web_record as record_key,
    web_turns as turns_key,
};

fn corrupt(e: serde_json::Error) -> ContextError {
    ContextError::Corrupt(e.to_string())
}

/// The registry, over the shared store.
#[derive(Clone)]
pub struct WebCalls {
    store: ContextStore,
}

impl WebCalls {
    pub fn new(store: ContextStore) -> Self {
        WebCalls { store }
    }

    pub fn store(&self) -> &ContextStore {
        &self.store
    }

    /// Reserves one of `cap` concurrent slots for `ws` until `deadline_ms` (unix ms), atomically:
    /// expired slots are dropped first, then the live ones counted. False when the demo is full.
    pub async fn reserve_slot(
        &self,
        ws: &WebSessionId,
        now_ms: i64,
        deadline_ms: i64,
        cap: usize,
    ) -> Result<bool, ContextError> {
        match &self.store {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                let script = redis::Script::new(
                    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]) \
                     if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end \
                     if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end \
                     redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3]) return 1",
                );
                let got: i64 = script
                    .key(ACTIVE_KEY)
                    .arg(now_ms)
                    .arg(deadline_ms)
                    .arg(ws.as_str())
                    .arg(cap)
                    .invoke_async(&mut c)
                    .await?;
                Ok(got == 1)
            }
            ContextStore::Memory(m) => m.with(|map| {
                let mut set = active_set(map);
                set.retain(|_, d| *d > now_ms);
                let ok = set.contains_key(ws.as_str()) || set.len() < cap;
                if ok {
                    set.insert(ws.as_str().to_owned(), deadline_ms);
                }
                store_active_set(map, &set);
                ok
            }),
        }
    }

    /// Frees the slot (the call ended).
    pub async fn release_slot(&self, ws: &WebSessionId) -> Result<(), ContextError> {
        match &self.store {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("ZREM")
                    .arg(ACTIVE_KEY)
                    .arg(ws.as_str())
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                let mut set = active_set(map);
                set.remove(ws.as_str());
                store_active_set(map, &set);
            }),
        }
    }

    /// Live sessions whose slot has not expired, for the sideband supervisors.
    pub async fn active(&self, now_ms: i64) -> Result<Vec<WebSessionId>, ContextError> {
        let ids: Vec<String> = match &self.store {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("ZRANGEBYSCORE")
                    .arg(ACTIVE_KEY)
                    .arg(format!("({now_ms}"))
                    .arg("+inf")
                    .query_async(&mut c)
                    .await?
            }
            ContextStore::Memory(m) => m.with(|map| {
                active_set(map)
                    .into_iter()
                    .filter(|(_, d)| *d > now_ms)
                    .map(|(k, _)| k)
                    .collect()
            })?,
        };
        Ok(ids.iter().filter_map(|s| WebSessionId::parse(s)).collect())
    }

    pub async fn put(&self, call: &WebCall) -> Result<(), ContextError> {
        let json = serde_json::to_string(call).map_err(corrupt)?;
        let ttl = (call.deadline - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            + RECORD_GRACE;
        self.store
            .set_value(&record_key(&call.session), json, ttl)
            .await
    }

    pub async fn load(&self, ws: &WebSessionId) -> Result<Option<WebCall>, ContextError> {
        match self.store.get_value(&record_key(ws)).await? {
            Some(json) => serde_json::from_str(&json).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    /// Takes the sideband lease for `ws` if nobody holds it.
    pub async fn lease(
        &self,
        ws: &WebSessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, ContextError> {
        self.store.set_if_absent(&lease_key(ws), owner, ttl).await
    }

    /// Extends our lease; false if it is no longer ours (another instance took over).
    pub async fn renew(
        &self,
        ws: &WebSessionId,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, ContextError> {
        self.store.renew_if_owner(&lease_key(ws), owner, ttl).await
    }

    /// Gives our lease back (compare-and-delete: never someone else's).
    pub async fn unlease(&self, ws: &WebSessionId, owner: &str) -> Result<(), ContextError> {
        self.store
            .delete_if_owner(&lease_key(ws), owner)
            .await
            .map(|_| ())
    }

    /// Appends a finished turn (the list keeps the latest [`MAX_TURNS`]).
    pub async fn push_turn(&self, ws: &WebSessionId, turn: &Turn) -> Result<(), ContextError> {
        let json = serde_json::to_string(turn).map_err(corrupt)?;
        self.store
            .push_bounded(&turns_key(ws), json, MAX_TURNS, RECORD_GRACE * 2)
            .await
    }

    pub async fn turns(&self, ws: &WebSessionId) -> Result<Vec<Turn>, ContextError> {
        self.store
            .list(&turns_key(ws))
            .await?
            .iter()
            .map(|j| serde_json::from_str(j).map_err(corrupt))
            .collect()
    }

    /// Claims one function call of this session so it runs once, whichever instance sees it.
    pub async fn claim_function_call(
        &self,
        ws: &WebSessionId,
        call_id: &str,
    ) -> Result<bool, ContextError> {
        self.store
            .set_if_absent(&fc_key(ws, call_id), "1", RECORD_GRACE)
            .await
    }
}

fn active_set(map: &HashMap<String, (String, Instant)>) -> HashMap<String, i64> {
    map.get(ACTIVE_KEY)
        .and_then(|(v, _)| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn store_active_set(map: &mut HashMap<String, (String, Instant)>, set: &HashMap<String, i64>) {
    let json = serde_json::to_string(set).unwrap_or_else(|_| "{}".into());
    map.insert(
        ACTIVE_KEY.to_owned(),
        (json, Instant::now() + Duration::from_secs(24 * 3600)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ws: &WebSessionId) -> WebCall {
        let now = chrono::Utc::now();
        WebCall {
            session: ws.clone(),
            rtc_call_id: RtcCallId::parse("rtc_abc123").unwrap(),
            client: ClientAddr::new("203.0.113.4".parse().unwrap()),
            started_at: now,
            deadline: now + chrono::Duration::seconds(300),
            traceparent: None,
            ended: None,
            handoff: None,
        }
    }

    #[test]
    fn call_ids_come_from_the_location_header() {
        assert_eq!(
            RtcCallId::from_location("/v1/realtime/calls/rtc_u1_9c65")
                .unwrap()
                .as_str(),
            "rtc_u1_9c65"
        );
        assert!(RtcCallId::from_location("/v1/realtime/calls/").is_none());
        assert!(RtcCallId::from_location("/v1/realtime/calls/rtc_x?y").is_some());
        assert!(RtcCallId::parse("rtc_a/b").is_none());
        assert!(RtcCallId::parse("sess_x").is_none());
    }

    #[tokio::test]
    async fn the_memory_registry_caps_leases_and_keeps_turns() {
        let w = WebCalls::new(ContextStore::memory());
        let (a, b, c) = (
            WebSessionId::generate(),
            WebSessionId::generate(),
            WebSessionId::generate(),
        );
        assert!(w.reserve_slot(&a, 1_000, 5_000, 2).await.unwrap());
        assert!(w.reserve_slot(&b, 1_000, 2_000, 2).await.unwrap());
        assert!(!w.reserve_slot(&c, 1_000, 5_000, 2).await.unwrap(), "full");
        assert!(
            w.reserve_slot(&c, 2_500, 5_000, 2).await.unwrap(),
            "b expired"
        );
        w.release_slot(&a).await.unwrap();
        assert_eq!(w.active(2_500).await.unwrap(), vec![c.clone()]);

        let rec = call(&a);
        w.put(&rec).await.unwrap();
        assert_eq!(w.load(&a).await.unwrap(), Some(rec));
        assert!(w.lease(&a, "i1", Duration::from_secs(5)).await.unwrap());
        assert!(!w.lease(&a, "i2", Duration::from_secs(5)).await.unwrap());
        assert!(!w.renew(&a, "i2", Duration::from_secs(5)).await.unwrap());
        w.unlease(&a, "i2").await.unwrap();
        assert!(
            w.renew(&a, "i1", Duration::from_secs(5)).await.unwrap(),
            "not someone else's to free"
        );
        w.unlease(&a, "i1").await.unwrap();
        assert!(w.lease(&a, "i2", Duration::from_secs(5)).await.unwrap());

        for i in 0..(MAX_TURNS + 3) {
            let t = Turn::new(crate::transcript::Speaker::Visitor, &format!("t{i}")).unwrap();
            w.push_turn(&a, &t).await.unwrap();
        }
        let turns = w.turns(&a).await.unwrap();
        assert_eq!(turns.len(), MAX_TURNS);
        assert_eq!(turns[0].text, "t3");
        assert!(w.claim_function_call(&a, "call_1").await.unwrap());
        assert!(!w.claim_function_call(&a, "call_1").await.unwrap());
    }
}
