//! Hourly abuse and cost limits per client, per network and (for callbacks) for the whole site.
//! Fixed windows of one hour counted in the shared store (Redis in production, so every instance
//! counts together). A unit is taken before the action and given back if the action fails for a
//! reason that is not the client's doing, so refusals reflect what was really spent.
//! Addresses are never stored as such: keys carry a hash of the address or network.

use crate::call_context::{ContextError, ContextStore};
use crate::client_addr::ClientAddr;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Web voice sessions opened (each costs an OpenAI session).
    Session,
    /// Leads stored.
    Lead,
    /// Callbacks placed (each rings a phone and costs a call).
    Callback,
}

impl LimitKind {
    fn as_str(self) -> &'static str {
        match self {
            LimitKind::Session => "session",
            LimitKind::Lead => "lead",
            LimitKind::Callback => "callback",
        }
    }
}

/// Which count was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    Client,
    Network,
    Global,
}

impl LimitScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Client => "client",
            LimitScope::Network => "network",
            LimitScope::Global => "global",
        }
    }
}

/// Per-hour ceilings for one kind; `global` is `None` where the site has no overall hourly cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyLimit {
    pub per_client: u64,
    pub per_network: u64,
    pub global: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    pub sessions: HourlyLimit,
    pub leads: HourlyLimit,
    pub callbacks: HourlyLimit,
}

impl LimitsConfig {
    fn of(&self, kind: LimitKind) -> HourlyLimit {
        match kind {
            LimitKind::Session => self.sessions,
            LimitKind::Lead => self.leads,
            LimitKind::Callback => self.callbacks,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{kind:?} limit reached ({scope:?})")]
    Refused {
        kind: LimitKind,
        scope: LimitScope,
        retry_after_secs: u64,
    },
    #[error(transparent)]
    Unavailable(#[from] ContextError),
}

/// Units taken by [`Limits::take`], to give back with [`Limits::give_back`].
#[derive(Debug, Clone)]
pub struct Taken(Vec<String>);

const WINDOW_SECS: i64 = 3600;

#[derive(Clone)]
pub struct Limits {
    store: ContextStore,
    cfg: LimitsConfig,
}

impl Limits {
    pub fn new(store: ContextStore, cfg: LimitsConfig) -> Self {
        Limits { store, cfg }
    }

    pub fn config(&self) -> &LimitsConfig {
        &self.cfg
    }

    /// Takes one unit of `kind` for `client` at `now_unix`, or says which limit refused (every
    /// unit taken so far is given back, so a refusal costs nothing).
    pub async fn take(
        &self,
        kind: LimitKind,
        client: &ClientAddr,
        now_unix: i64,
    ) -> Result<Taken, LimitError> {
        let limit = self.cfg.of(kind);
        let window = now_unix.div_euclid(WINDOW_SECS);
        let retry_after_secs = (WINDOW_SECS - now_unix.rem_euclid(WINDOW_SECS)) as u64;
        let key = |scope: LimitScope, who: &str| {
            crate::call_context::keys::limit(kind.as_str(), scope.as_str(), who, window)
        };
        let mut checks = vec![
            (
                LimitScope::Client,
                key(
                    LimitScope::Client,
                    &crate::call_context::key_hash(&client.ip().to_string()),
                ),
                limit.per_client,
            ),
            (
                LimitScope::Network,
                key(
                    LimitScope::Network,
                    &crate::call_context::key_hash(&client.network()),
                ),
                limit.per_network,
            ),
        ];
        if let Some(g) = limit.global {
            checks.push((LimitScope::Global, key(LimitScope::Global, "all"), g));
        }
        let mut taken = Vec::new();
        for (scope, key, max) in checks {
            let counted = self
                .store
                .incr(&key, Duration::from_secs(WINDOW_SECS as u64 + 60))
                .await;
            match counted {
                Ok(n) => {
                    taken.push(key);
                    if n > max {
                        self.give_back(Taken(taken)).await;
                        return Err(LimitError::Refused {
                            kind,
                            scope,
                            retry_after_secs,
                        });
                    }
                }
                Err(e) => {
                    self.give_back(Taken(taken)).await;
                    return Err(e.into());
                }
            }
        }
        Ok(Taken(taken))
    }

    /// Returns units taken for an action that then failed on our side.
    pub async fn give_back(&self, taken: Taken) {
        for key in taken.0 {
            if let Err(e) = self.store.decr(&key).await {
                tracing::warn!(error = %e, "limit unit not given back");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        let h = |c, n, g| HourlyLimit {
            per_client: c,
            per_network: n,
            global: g,
        };
        Limits::new(
            ContextStore::memory(),
            LimitsConfig {
                sessions: h(2, 3, None),
                leads: h(1, 1, None),
                callbacks: h(5, 5, Some(2)),
            },
        )
    }

    fn addr(s: &str) -> ClientAddr {
        ClientAddr::new(s.parse().unwrap())
    }

    #[tokio::test]
    async fn client_network_and_global_limits_refuse_with_their_scope() {
        let l = limits();
        let now = 7_200 + 600;
        l.take(LimitKind::Session, &addr("203.0.113.1"), now)
            .await
            .unwrap();
        l.take(LimitKind::Session, &addr("203.0.113.1"), now)
            .await
            .unwrap();
        let e = l
            .take(LimitKind::Session, &addr("203.0.113.1"), now)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            LimitError::Refused {
                scope: LimitScope::Client,
                retry_after_secs: 3000,
                ..
            }
        ));
        // Same /24, another address: the network has one unit left, then none.
        l.take(LimitKind::Session, &addr("203.0.113.2"), now)
            .await
            .unwrap();
        let e = l
            .take(LimitKind::Session, &addr("203.0.113.3"), now)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            LimitError::Refused {
                scope: LimitScope::Network,
                ..
            }
        ));
        // Another network is untouched; the next hour starts afresh.
        l.take(LimitKind::Session, &addr("198.51.100.1"), now)
            .await
            .unwrap();
        l.take(LimitKind::Session, &addr("203.0.113.1"), now + 3_600)
            .await
            .unwrap();
        // The site-wide callback cap.
        l.take(LimitKind::Callback, &addr("192.0.2.1"), now)
            .await
            .unwrap();
        l.take(LimitKind::Callback, &addr("198.51.100.9"), now)
            .await
            .unwrap();
        let e = l
            .take(LimitKind::Callback, &addr("203.0.113.50"), now)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            LimitError::Refused {
                scope: LimitScope::Global,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn a_unit_given_back_can_be_taken_again() {
        let l = limits();
        let t = l
            .take(LimitKind::Lead, &addr("192.0.2.7"), 100)
            .await
            .unwrap();
        assert!(l
            .take(LimitKind::Lead, &addr("192.0.2.7"), 100)
            .await
            .is_err());
        l.give_back(t).await;
        l.take(LimitKind::Lead, &addr("192.0.2.7"), 100)
            .await
            .unwrap();
    }
}
