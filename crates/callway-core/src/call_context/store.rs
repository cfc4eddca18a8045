//! The store itself: Redis shared by every instance, or memory for the single-process sandbox
//! (decided once, in [`ContextStore::from_settings`]), and the primitives the other modules
//! build on. Every Redis command has the connection's response timeout (`redis_conn`).

use super::{keys, random_id, CallContext, CallRef, CONTEXT_TTL, TIMELINE_TTL};
use crate::redis_conn::Redis;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Which process asks for the store: the all-in-one launcher runs every service in one
/// process, so memory is consistent there; a standalone service shares state with the others
/// only through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    AllInOne,
    Standalone,
}

impl ContextStore {
    /// The one place that decides "Redis or memory": Redis whenever `REDIS_URL` is set; memory
    /// for the all-in-one launcher, or a standalone service in the sandbox; otherwise an error
    /// naming `REDIS_URL`.
    pub async fn from_settings(
        settings: &crate::Settings,
        process: Process,
    ) -> Result<Self, crate::config::ConfigError> {
        use crate::config::ConfigError;
        match &settings.redis_url {
            Some(url) => crate::redis_conn::connect(url)
                .await
                .map(ContextStore::Redis)
                .map_err(|e| ConfigError::Invalid {
                    name: "REDIS_URL",
                    reason: e.to_string(),
                }),
            None if process == Process::AllInOne || settings.callway_sandbox => {
                Ok(ContextStore::memory())
            }
            None => Err(ConfigError::Missing("REDIS_URL")),
        }
    }

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
        self.set(keys::context(&ctx.call_ref), json, CONTEXT_TTL)
            .await
    }

    pub async fn load(&self, call_ref: &CallRef) -> Result<Option<CallContext>, ContextError> {
        match self.get(&keys::context(call_ref)).await? {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| ContextError::Corrupt(e.to_string())),
        }
    }

    pub async fn remove(&self, call_ref: &CallRef) -> Result<(), ContextError> {
        self.delete_key(&keys::context(call_ref)).await
    }

    /// A one-time token for the media stream URL, pointing at the call.
    pub async fn issue_stream_token(&self, call_ref: &CallRef) -> Result<String, ContextError> {
        let token = random_id("st_");
        self.set(
            keys::stream_token(&token),
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
            .get(&keys::stream_token(token))
            .await?
            .and_then(|r| CallRef::parse(&r)))
    }

    /// Consumes a stream token: the first caller gets the call, any later one gets `None`.
    pub async fn redeem_stream_token(&self, token: &str) -> Result<Option<CallRef>, ContextError> {
        if token.len() > 64 || !token.starts_with("st_") {
            return Ok(None);
        }
        Ok(self
            .take(&keys::stream_token(token))
            .await?
            .and_then(|r| CallRef::parse(&r)))
    }

    /// Which web session a call belongs to; outlives the context so the page can read the end.
    pub async fn set_owner(
        &self,
        call_ref: &CallRef,
        web_session_id: &str,
    ) -> Result<(), ContextError> {
        self.set(
            keys::owner(call_ref),
            web_session_id.to_owned(),
            TIMELINE_TTL,
        )
        .await
    }

    pub async fn owner(&self, call_ref: &CallRef) -> Result<Option<String>, ContextError> {
        self.get(&keys::owner(call_ref)).await
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
    use crate::lead::LeadId;

    fn ctx() -> CallContext {
        CallContext {
            call_ref: CallRef::generate(),
            attempt: 1,
            kind: Default::default(),
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
            s.peek_stream_token(&t).await.unwrap(),
            Some(c.call_ref.clone())
        );
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
    }
}
