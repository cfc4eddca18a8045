//! The server's hold on every web voice call: a supervisor on each tools-svc instance looks for
//! live web calls nobody controls (the registry's active set), takes a call's lease and attaches
//! its sideband. If an instance dies its leases expire and another instance takes the calls over,
//! so a call keeps its tools whichever instance fails.

mod control;
#[cfg(test)]
mod control_tests;
mod session;
mod socket;

use crate::ToolsState;
use callway_core::session_token::WebSessionId;
use callway_ws::WsEndpoint;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A lease lasts this long unless renewed (an instance that stops renewing loses its calls).
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(8);
pub(crate) const LEASE_RENEW: Duration = Duration::from_secs(2);
/// How often the supervisor looks for calls nobody holds.
const SCAN_EVERY: Duration = Duration::from_millis(200);

/// Everything a sideband needs; cheap to clone.
#[derive(Clone)]
pub struct Sideband {
    state: ToolsState,
    /// OpenAI's server (`OPENAI_BASE_URL`), standard key.
    endpoint: WsEndpoint,
    /// `/v1/realtime` under that base.
    realtime_path: String,
    /// This instance's identity in leases.
    instance: String,
    max_session_secs: u64,
}

impl Sideband {
    pub fn new(
        state: ToolsState,
        openai_base_url: &str,
        api_key: callway_core::secret::Secret,
        connect_timeout: Duration,
        max_session_secs: u64,
    ) -> Result<Self, String> {
        let endpoint = WsEndpoint::new(
            openai_base_url,
            "/realtime",
            callway_ws::Credential::new(api_key.expose()),
            connect_timeout,
        )?;
        Ok(Sideband {
            state,
            realtime_path: endpoint.path().to_owned(),
            endpoint,
            instance: callway_core::call_context::random_id("tools_"),
            max_session_secs,
        })
    }

    /// Runs the supervisor until the returned handle is dropped or aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.supervise())
    }

    async fn supervise(self) {
        let running: Arc<Mutex<HashSet<WebSessionId>>> = Arc::default();
        let mut tick = tokio::time::interval(SCAN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now_ms = chrono::Utc::now().timestamp_millis();
            let active = match self.state.web_calls.active(now_ms).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "web calls not listed");
                    continue;
                }
            };
            for ws in active {
                if running.lock().map(|r| r.contains(&ws)).unwrap_or(true) {
                    continue;
                }
                match self
                    .state
                    .web_calls
                    .lease(&ws, &self.instance, LEASE_TTL)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "lease not taken");
                        continue;
                    }
                }
                if let Ok(mut r) = running.lock() {
                    r.insert(ws.clone());
                }
                let (sb, running) = (self.clone(), running.clone());
                tokio::spawn(async move {
                    // Live sessions as held here: summed over instances, the site's live count
                    // (a restarted instance drops its leases and its count together).
                    let active = &callway_core::metrics::get().sessions_active;
                    active.add(1, &[]);
                    // Awaited through its handle so a panicking session still frees its entry.
                    let _ = tokio::spawn(session::run(sb, ws.clone())).await;
                    active.add(-1, &[]);
                    if let Ok(mut r) = running.lock() {
                        r.remove(&ws);
                    }
                });
            }
        }
    }
}
