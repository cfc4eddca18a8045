//! State shared by the HTTP front, the WebSocket sessions and the WebRTC peers.

use crate::config::{Failure, SidebandRefusal, SimConfig};
use crate::engine::EngineOptions;
use crate::live_call::LiveCall;
use crate::recording::Recorder;
use crate::scenario::Scenario;
use crate::session_config::SessionConfig;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// A minted `ek_` client secret.
#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub expires_at: u64,
    pub session: SessionConfig,
}

pub(crate) struct Shared {
    pub api_key: String,
    pub opts: EngineOptions,
    pub ws_fail_after: Option<std::time::Duration>,
    pub ws_fail_after_events: Option<usize>,
    pub media_ip: IpAddr,
    pub scenario: Mutex<Scenario>,
    /// Script for WebSocket sessions only (`None`: `scenario`), so one simulator can play the
    /// web agent (WebRTC) and the phone agent (the bridge's WebSocket) in the sandbox.
    pub ws_scenario: Mutex<Option<Scenario>>,
    pub fail_next: Mutex<Option<Failure>>,
    pub secrets: Mutex<HashMap<String, Secret>>,
    /// Live WebRTC calls, by `rtc_…` id. A call leaves this map the moment it ends (hang-up
    /// accepted, peer gone), so a later sideband attach or hang-up finds nothing.
    pub calls: Mutex<HashMap<String, Arc<LiveCall>>>,
    /// Drop every sideband after it was sent this many server events (no close frame).
    pub sideband_fail_after_events: Option<usize>,
    /// Refuse the next sideband attach this way; consumed once.
    pub sideband_refusal: Mutex<Option<SidebandRefusal>>,
    /// `shutdown_date` of models, as `GET /v1/models/{model}` shows it.
    pub model_shutdowns: Mutex<HashMap<String, chrono::NaiveDate>>,
    pub recorder: Recorder,
    pub shutdown: watch::Receiver<bool>,
}

/// Locks, recovering from a poisoned mutex (a panicked session must not take the simulator down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub(crate) fn new(cfg: &SimConfig, media_ip: IpAddr, shutdown: watch::Receiver<bool>) -> Self {
        Shared {
            api_key: cfg.api_key.clone(),
            opts: EngineOptions {
                generation_speed: cfg.generation_speed.max(0.01),
                max_session: cfg.max_session,
                vad_min_speech_ms: cfg.vad_min_speech_ms.max(10),
            },
            ws_fail_after: cfg.ws_fail_after,
            ws_fail_after_events: cfg.ws_fail_after_events,
            media_ip,
            scenario: Mutex::new(cfg.scenario.clone()),
            ws_scenario: Mutex::new(None),
            fail_next: Mutex::new(cfg.fail_next.clone()),
            secrets: Mutex::new(HashMap::new()),
            calls: Mutex::new(HashMap::new()),
            sideband_fail_after_events: cfg.sideband_fail_after_events,
            sideband_refusal: Mutex::new(None),
            model_shutdowns: Mutex::new(cfg.model_shutdowns.clone()),
            recorder: Recorder::default(),
            shutdown,
        }
    }

    pub(crate) fn scenario(&self) -> Scenario {
        lock(&self.scenario).clone()
    }

    pub(crate) fn ws_scenario(&self) -> Scenario {
        lock(&self.ws_scenario)
            .clone()
            .unwrap_or_else(|| self.scenario())
    }
}
