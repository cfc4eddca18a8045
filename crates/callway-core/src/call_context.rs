//! What the phone leg needs to know about the web conversation, and the one-shot claims that keep
//! callbacks in check. Shared through Redis so any instance can serve any call; an in-memory
//! implementation backs the single-process sandbox. Keys never contain phone numbers (a SHA-256
//! of the E.164 form is used for the cooldown).

use crate::lead::LeadId;
use crate::redis_conn::Redis;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

    /// `client_state` must be base64 for Telnyx.
    pub fn to_client_state(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }

    pub fn from_client_state(state: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(state.trim())
            .ok()?;
        Self::parse(std::str::from_utf8(&bytes).ok()?)
    }
}

/// Everything the bridge and the webhooks need, written by `trigger_call`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct CallContext {
    pub call_ref: CallRef,
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

/// How long the phone-leg timeline stays readable by the page after the call.
pub const TIMELINE_TTL: Duration = Duration::from_secs(3600);
/// Longest timeline kept for one call (a long call has many turns; the page needs the recent ones).
pub const MAX_TIMELINE_EVENTS: usize = 200;

/// One step of the phone leg, as the web page shows it (`dialing`, `ringing`, `answered`,
/// `voicemail`, `agent`, `callee`, `ended`...). `text` is what was said, for `agent`/`callee`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelineEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl TimelineEvent {
    pub fn now(kind: &str, text: Option<String>) -> Self {
        Self {
            at: chrono::Utc::now(),
            kind: kind.to_owned(),
            text,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("context store unavailable: {0}")]
    Unavailable(String),
    #[error("context store returned unreadable data: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for ContextError {
    fn from(e: redis::RedisError) -> Self {
        ContextError::Unavailable(e.to_string())
    }
}

#[derive(Clone)]
pub enum ContextStore {
    Redis(Redis),
    Memory(MemoryStore),
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    entries: Arc<Mutex<HashMap<String, (String, Instant)>>>,
}

impl MemoryStore {
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<String, (String, Instant)>) -> T,
    ) -> Result<T, ContextError> {
        let mut map = self
            .entries
            .lock()
            .map_err(|_| ContextError::Unavailable("poisoned".into()))?;
        let now = Instant::now();
        map.retain(|_, (_, exp)| *exp > now);
        Ok(f(&mut map))
    }
}

fn ctx_key(r: &CallRef) -> String {
    format!("callway:ctx:{}", r.as_str())
}
fn stream_key(token: &str) -> String {
    format!("callway:stream:{token}")
}

/// Redis key material for a value that must not appear in a key (a number, an address, an id
/// chosen by a peer): the first 128 bits of its SHA-256, URL-safe.
pub fn key_hash(value: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, value.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

/// Redis key material for a phone number: never the number itself.
pub fn phone_key(e164: &str) -> String {
    key_hash(e164)
}

impl ContextStore {
    pub fn memory() -> Self {
        ContextStore::Memory(MemoryStore::default())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ContextStore::Redis(_) => "redis",
            ContextStore::Memory(_) => "memory",
        }
    }

    async fn set(&self, key: String, value: String, ttl: Duration) -> Result<(), ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                map.insert(key, (value, Instant::now() + ttl));
            }),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<String>, ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                Ok(redis::cmd("GET").arg(key).query_async(&mut c).await?)
            }
            ContextStore::Memory(m) => m.with(|map| map.get(key).map(|(v, _)| v.clone())),
        }
    }

    async fn take(&self, key: &str) -> Result<Option<String>, ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                Ok(redis::cmd("GETDEL").arg(key).query_async(&mut c).await?)
            }
            ContextStore::Memory(m) => m.with(|map| map.remove(key).map(|(v, _)| v)),
        }
    }

    pub async fn delete_key(&self, key: &str) -> Result<(), ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                map.remove(key);
            }),
        }
    }

    /// Sets `key` only if absent (`SET NX EX`). True when this caller got it.
    pub async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                let r: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg("1")
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .query_async(&mut c)
                    .await?;
                Ok(r.is_some())
            }
            ContextStore::Memory(m) => m.with(|map| {
                if map.contains_key(key) {
                    false
                } else {
                    map.insert(key.to_owned(), ("1".into(), Instant::now() + ttl));
                    true
                }
            }),
        }
    }

    /// Increments a counter that expires after `ttl`; returns the new value.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                let (n,): (u64,) = redis::pipe()
                    .atomic()
                    .incr(key, 1u64)
                    .expire(key, ttl.as_secs() as i64)
                    .ignore()
                    .query_async(&mut c)
                    .await?;
                Ok(n)
            }
            ContextStore::Memory(m) => m.with(|map| {
                let entry = map
                    .entry(key.to_owned())
                    .or_insert(("0".into(), Instant::now() + ttl));
                let n = entry.0.parse::<u64>().unwrap_or(0) + 1;
                entry.0 = n.to_string();
                n
            }),
        }
    }

    /// Gives back one unit taken with [`ContextStore::incr`] (a request that failed after
    /// counting). Never goes below zero and never creates the key (it may have expired).
    pub async fn decr(&self, key: &str) -> Result<(), ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                let script = redis::Script::new(
                    "local v = tonumber(redis.call('GET', KEYS[1]) or '0') \
                     if v > 0 then return redis.call('DECR', KEYS[1]) end return 0",
                );
                let _: i64 = script.key(key).invoke_async(&mut c).await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                if let Some(entry) = map.get_mut(key) {
                    let n = entry.0.parse::<u64>().unwrap_or(0).saturating_sub(1);
                    entry.0 = n.to_string();
                }
            }),
        }
    }

    pub async fn put(&self, ctx: &CallContext) -> Result<(), ContextError> {
        let json = serde_json::to_string(ctx).map_err(|e| ContextError::Corrupt(e.to_string()))?;
        self.set(ctx_key(&ctx.call_ref), json, CONTEXT_TTL).await
    }

    pub async fn load(&self, call_ref: &CallRef) -> Result<Option<CallContext>, ContextError> {
        match self.get(&ctx_key(call_ref)).await? {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| ContextError::Corrupt(e.to_string())),
        }
    }

    pub async fn remove(&self, call_ref: &CallRef) -> Result<(), ContextError> {
        self.delete_key(&ctx_key(call_ref)).await
    }

    /// A one-time token for the media stream URL, pointing at the call.
    pub async fn issue_stream_token(&self, call_ref: &CallRef) -> Result<String, ContextError> {
        let token = random_id("st_");
        self.set(
            stream_key(&token),
            call_ref.as_str().to_owned(),
            CONTEXT_TTL,
        )
        .await?;
        Ok(token)
    }

    /// Which call a stream token points at, without consuming it: the media bridge checks the
    /// token, the context and the stream secret first, and redeems only once all of them passed
    /// and a call slot is free (a refused socket must not burn the real one's token).
    pub async fn peek_stream_token(&self, token: &str) -> Result<Option<CallRef>, ContextError> {
        if token.len() > 64 || !token.starts_with("st_") {
            return Ok(None);
        }
        Ok(self
            .get(&stream_key(token))
            .await?
            .and_then(|r| CallRef::parse(&r)))
    }

    /// Consumes a stream token: the first caller gets the call, any later one gets `None`.
    pub async fn redeem_stream_token(&self, token: &str) -> Result<Option<CallRef>, ContextError> {
        if token.len() > 64 || !token.starts_with("st_") {
            return Ok(None);
        }
        Ok(self
            .take(&stream_key(token))
            .await?
            .and_then(|r| CallRef::parse(&r)))
    }

    /// Appends to the call's timeline (kept after the call for the page, then expires).
    pub async fn push_event(
        &self,
        call_ref: &CallRef,
        event: &TimelineEvent,
    ) -> Result<(), ContextError> {
        let key = format!("callway:timeline:{}", call_ref.as_str());
        let json =
            serde_json::to_string(event).map_err(|e| ContextError::Corrupt(e.to_string()))?;
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::pipe()
                    .atomic()
                    .rpush(&key, json)
                    .ltrim(&key, -(MAX_TIMELINE_EVENTS as isize), -1)
                    .expire(&key, TIMELINE_TTL.as_secs() as i64)
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                let entry = map
                    .entry(key)
                    .or_insert(("[]".into(), Instant::now() + TIMELINE_TTL));
                let mut list: Vec<serde_json::Value> =
                    serde_json::from_str(&entry.0).unwrap_or_default();
                list.push(serde_json::from_str(&json).unwrap_or_default());
                if list.len() > MAX_TIMELINE_EVENTS {
                    list.remove(0);
                }
                entry.0 = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
            }),
        }
    }

    pub async fn timeline(&self, call_ref: &CallRef) -> Result<Vec<TimelineEvent>, ContextError> {
        let key = format!("callway:timeline:{}", call_ref.as_str());
        let raw: Vec<String> = match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await?
            }
            ContextStore::Memory(m) => m.with(|map| {
                let list: Vec<serde_json::Value> = map
                    .get(&key)
                    .and_then(|(v, _)| serde_json::from_str(v).ok())
                    .unwrap_or_default();
                list.iter().map(|v| v.to_string()).collect()
            })?,
        };
        raw.iter()
            .map(|j| serde_json::from_str(j).map_err(|e| ContextError::Corrupt(e.to_string())))
            .collect()
    }

    /// Which web session a call belongs to; outlives the context so the page can read the end.
    pub async fn set_owner(
        &self,
        call_ref: &CallRef,
        web_session_id: &str,
    ) -> Result<(), ContextError> {
        self.set(
            format!("callway:owner:{}", call_ref.as_str()),
            web_session_id.to_owned(),
            TIMELINE_TTL,
        )
        .await
    }

    pub async fn owner(&self, call_ref: &CallRef) -> Result<Option<String>, ContextError> {
        self.get(&format!("callway:owner:{}", call_ref.as_str()))
            .await
    }

    /// A small per-call fact shared between services (e.g. `amd` = `human`/`machine`).
    pub async fn set_flag(
        &self,
        call_ref: &CallRef,
        name: &str,
        value: &str,
    ) -> Result<(), ContextError> {
        self.set(
            format!("callway:flag:{}:{name}", call_ref.as_str()),
            value.to_owned(),
            CONTEXT_TTL,
        )
        .await
    }

    pub async fn flag(
        &self,
        call_ref: &CallRef,
        name: &str,
    ) -> Result<Option<String>, ContextError> {
        self.get(&format!("callway:flag:{}:{name}", call_ref.as_str()))
            .await
    }

    pub async fn ping(&self) -> bool {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            }
            ContextStore::Memory(_) => true,
        }
    }
}

/// Generic primitives the other registries (`web_call`) build on, Redis and memory alike.
impl ContextStore {
    pub async fn set_value(
        &self,
        key: &str,
        value: String,
        ttl: Duration,
    ) -> Result<(), ContextError> {
        self.set(key.to_owned(), value, ttl).await
    }

    pub async fn get_value(&self, key: &str) -> Result<Option<String>, ContextError> {
        self.get(key).await
    }

    /// `SET key value NX PX ttl`: true when this caller set it.
    pub async fn set_if_absent(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                let r: Option<String> = redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl.as_millis().max(1) as u64)
                    .query_async(&mut c)
                    .await?;
                Ok(r.is_some())
            }
            ContextStore::Memory(m) => m.with(|map| {
                if map.contains_key(key) {
                    false
                } else {
                    map.insert(key.to_owned(), (value.to_owned(), Instant::now() + ttl));
                    true
                }
            }),
        }
    }

    /// Extends `key`'s expiry only if it still holds `value` (compare-and-expire).
    pub async fn renew_if_owner(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<bool, ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                let script = redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                     return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
                );
                let n: i64 = script
                    .key(key)
                    .arg(value)
                    .arg(ttl.as_millis().max(1) as u64)
                    .invoke_async(&mut c)
                    .await?;
                Ok(n == 1)
            }
            ContextStore::Memory(m) => m.with(|map| match map.get_mut(key) {
                Some(entry) if entry.0 == value => {
                    entry.1 = Instant::now() + ttl;
                    true
                }
                _ => false,
            }),
        }
    }

    /// Deletes `key` only if it still holds `value` (compare-and-delete); true if deleted.
    pub async fn delete_if_owner(&self, key: &str, value: &str) -> Result<bool, ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                let script = redis::Script::new(
                    "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                     return redis.call('DEL', KEYS[1]) end return 0",
                );
                let n: i64 = script.key(key).arg(value).invoke_async(&mut c).await?;
                Ok(n == 1)
            }
            ContextStore::Memory(m) => m.with(|map| {
                if map.get(key).is_some_and(|(v, _)| v == value) {
                    map.remove(key);
                    true
                } else {
                    false
                }
            }),
        }
    }

    /// Appends to a list that keeps its latest `max` entries and expires `ttl` after the last push.
    pub async fn push_bounded(
        &self,
        key: &str,
        value: String,
        max: usize,
        ttl: Duration,
    ) -> Result<(), ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::pipe()
                    .atomic()
                    .rpush(key, value)
                    .ltrim(key, -(max as isize), -1)
                    .expire(key, ttl.as_secs().max(1) as i64)
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                let mut list: Vec<String> = map
                    .get(key)
                    .and_then(|(v, _)| serde_json::from_str(v).ok())
                    .unwrap_or_default();
                list.push(value);
                if list.len() > max {
                    list.drain(..list.len() - max);
                }
                let json = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
                map.insert(key.to_owned(), (json, Instant::now() + ttl));
            }),
        }
    }

    /// The whole list written by [`ContextStore::push_bounded`].
    pub async fn list(&self, key: &str) -> Result<Vec<String>, ContextError> {
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                Ok(redis::cmd("LRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await?)
            }
            ContextStore::Memory(m) => m.with(|map| {
                map.get(key)
                    .and_then(|(v, _)| serde_json::from_str(v).ok())
                    .unwrap_or_default()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CallContext {
        CallContext {
            call_ref: CallRef::generate(),
            lead_id: LeadId::new(),
            first_name: "Marie".into(),
            web_transcript: vec![],
            web_session_id: "ws_x".into(),
            phone_masked: "+33 6•• •• •• 78".into(),
            stream_secret: random_id("ss_"),
            call_control_id: None,
            traceparent: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn memory_store_keeps_contexts_and_tokens_are_single_use() {
        let s = ContextStore::memory();
        let c = ctx();
        s.put(&c).await.unwrap();
        assert_eq!(s.load(&c.call_ref).await.unwrap(), Some(c.clone()));
        let t = s.issue_stream_token(&c.call_ref).await.unwrap();
        assert_eq!(
            s.redeem_stream_token(&t).await.unwrap(),
            Some(c.call_ref.clone())
        );
        assert_eq!(s.redeem_stream_token(&t).await.unwrap(), None);
        assert_eq!(s.redeem_stream_token("st_unknown").await.unwrap(), None);
        assert!(s.claim("k", Duration::from_secs(5)).await.unwrap());
        assert!(!s.claim("k", Duration::from_secs(5)).await.unwrap());
        assert_eq!(s.incr("n", Duration::from_secs(5)).await.unwrap(), 1);
        assert_eq!(s.incr("n", Duration::from_secs(5)).await.unwrap(), 2);
        s.remove(&c.call_ref).await.unwrap();
        assert_eq!(s.load(&c.call_ref).await.unwrap(), None);
        for i in 0..(MAX_TIMELINE_EVENTS + 5) {
            s.push_event(
                &c.call_ref,
                &TimelineEvent::now("agent", Some(format!("{i}"))),
            )
            .await
            .unwrap();
        }
        let t = s.timeline(&c.call_ref).await.unwrap();
        assert_eq!(t.len(), MAX_TIMELINE_EVENTS);
        assert_eq!(
            t.last().unwrap().text.as_deref(),
            Some(format!("{}", MAX_TIMELINE_EVENTS + 4).as_str())
        );
    }

    #[test]
    fn client_state_round_trips_and_refuses_other_content() {
        let r = CallRef::generate();
        assert_eq!(CallRef::from_client_state(&r.to_client_state()), Some(r));
        assert_eq!(CallRef::from_client_state("not base64!"), None);
        assert_eq!(
            CallRef::from_client_state(&base64::engine::general_purpose::STANDARD.encode("x")),
            None
        );
        assert!(!phone_key("+33612345678").contains("612345678"));
    }
}
