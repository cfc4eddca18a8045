//! Claims that carry the identity of the request that wrote them. A command can time out on our
//! side and still land when a stalled Redis wakes up; with a bare "taken" mark the same request's
//! retry would then be refused by its own leftover. Here the retry finds its own identity and
//! goes on, another request is refused, and a release deletes the claim only if it is still
//! ours (compare-and-delete), so a late release never frees someone else's claim.

use super::{ContextError, ContextStore};
use std::time::Duration;

/// What [`ContextStore::acquire`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// The claim was free: it is ours now.
    New,
    /// It already held our identity (a retry of the same request, after a fault): still ours,
    /// its expiry renewed.
    Ours,
    /// Another request holds it.
    Other,
}

impl Claimed {
    pub fn is_ours(self) -> bool {
        self != Claimed::Other
    }
}

const ACQUIRE: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end \
     if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 2 end \
     return 0";

impl ContextStore {
    /// Takes `key` for `holder` (the request's identity) for `ttl`, atomically.
    pub async fn acquire(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Claimed, ContextError> {
        let ttl_ms = ttl.as_millis().max(1) as u64;
        let n: i64 = match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::Script::new(ACQUIRE)
                    .key(key)
                    .arg(holder)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await?
            }
            ContextStore::Memory(m) => m.with(|map| match map.get_mut(key) {
                None => {
                    map.insert(
                        key.to_owned(),
                        (holder.to_owned(), std::time::Instant::now() + ttl),
                    );
                    1
                }
                Some(entry) if entry.0 == holder => {
                    entry.1 = std::time::Instant::now() + ttl;
                    2
                }
                Some(_) => 0,
            })?,
        };
        Ok(match n {
            1 => Claimed::New,
            2 => Claimed::Ours,
            _ => Claimed::Other,
        })
    }

    /// Gives `key` back if `holder` still holds it; true when it was deleted.
    pub async fn release(&self, key: &str, holder: &str) -> Result<bool, ContextError> {
        self.delete_if_owner(key, holder).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_retry_finds_its_own_claim_and_a_release_frees_only_its_own() {
        let s = ContextStore::memory();
        let ttl = Duration::from_secs(60);
        assert_eq!(s.acquire("k", "lead_a", ttl).await.unwrap(), Claimed::New);
        assert_eq!(s.acquire("k", "lead_a", ttl).await.unwrap(), Claimed::Ours);
        assert_eq!(s.acquire("k", "lead_b", ttl).await.unwrap(), Claimed::Other);
        assert!(!s.release("k", "lead_b").await.unwrap());
        assert_eq!(s.acquire("k", "lead_b", ttl).await.unwrap(), Claimed::Other);
        assert!(s.release("k", "lead_a").await.unwrap());
        assert_eq!(s.acquire("k", "lead_b", ttl).await.unwrap(), Claimed::New);
    }
}
