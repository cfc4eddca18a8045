//! Fixed-window rate limit per client for token minting (each token costs an OpenAI session).
//! Redis when configured, so every instance shares the count; in memory in the all-in-one.
//! Fails closed: if Redis does not answer, no token is minted.

use crate::error::TokenError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub enum RateLimiter {
    Memory {
        limit: u64,
        window_secs: u64,
        counts: Arc<Mutex<HashMap<String, (i64, u64)>>>,
    },
    Redis {
        limit: u64,
        window_secs: u64,
        conn: callway_core::redis_conn::Redis,
    },
}

impl RateLimiter {
    pub fn memory(limit: u64, window_secs: u64) -> Self {
        RateLimiter::Memory {
            limit,
            window_secs,
            counts: Arc::default(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RateLimiter::Memory { .. } => "memory",
            RateLimiter::Redis { .. } => "redis",
        }
    }

    /// Counts one request from `client` at `now` (unix seconds); refuses past the limit.
    pub async fn check(&self, client: &str, now: i64) -> Result<(), TokenError> {
        match self {
            RateLimiter::Memory {
                limit,
                window_secs,
                counts,
            } => {
                let window = now / *window_secs as i64;
                let mut counts = counts
                    .lock()
                    .map_err(|_| TokenError::LimiterUnavailable("poisoned".into()))?;
                if counts.len() > 100_000 {
                    counts.retain(|_, (w, _)| *w == window);
                }
                let entry = counts.entry(client.to_owned()).or_insert((window, 0));
                if entry.0 != window {
                    *entry = (window, 0);
                }
                entry.1 += 1;
                refuse_past(entry.1, *limit, *window_secs, now)
            }
            RateLimiter::Redis {
                limit,
                window_secs,
                conn,
            } => {
                let window = now / *window_secs as i64;
                let key = format!("callway:rl:token:{client}:{window}");
                let mut conn = conn.clone();
                let (count,): (u64,) = redis::pipe()
                    .atomic()
                    .incr(&key, 1u64)
                    .expire(&key, *window_secs as i64 + 1)
                    .ignore()
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| TokenError::LimiterUnavailable(e.to_string()))?;
                refuse_past(count, *limit, *window_secs, now)
            }
        }
    }

    pub async fn ping(&self) -> bool {
        match self {
            RateLimiter::Memory { .. } => true,
            RateLimiter::Redis { conn, .. } => {
                let mut conn = conn.clone();
                redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            }
        }
    }
}

fn refuse_past(count: u64, limit: u64, window_secs: u64, now: i64) -> Result<(), TokenError> {
    if count > limit {
        let retry_after_secs = window_secs - (now as u64 % window_secs);
        return Err(TokenError::RateLimited { retry_after_secs });
    }
    Ok(())
}
