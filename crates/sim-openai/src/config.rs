//! Simulator configuration and failure knobs.

use crate::scenario::Scenario;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// A forced failure for the next HTTP request (REST call or WebSocket handshake).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// 401 `invalid_api_key`, whatever key was sent.
    Unauthorized,
    /// 429 `rate_limit_exceeded`.
    RateLimited,
    /// 500 `server_error`.
    ServerError,
    /// Hold the request this long without answering, then serve it normally (timeout tests).
    Stall(Duration),
}

/// How to refuse the next sideband attach (`GET /v1/realtime?call_id=…`), before the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidebandRefusal {
    /// 401 `invalid_api_key`, whatever key was sent.
    Unauthorized,
    /// 404 `call_id_not_found`, even for a live call.
    NotFound,
}

/// How the simulator runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The only accepted standard API key (`Authorization: Bearer …`).
    pub api_key: String,
    /// Script for new sessions (a running session keeps the scenario it started with).
    pub scenario: Scenario,
    /// Address to bind (`127.0.0.1:0` in tests). WebRTC media uses the same IP.
    pub bind: SocketAddr,
    /// Forced failure for the next HTTP request; consumed once.
    pub fail_next: Option<Failure>,
    /// Drop every WebSocket this long after the upgrade (no close frame).
    pub ws_fail_after: Option<Duration>,
    /// Drop every WebSocket after sending this many server events (no close frame).
    pub ws_fail_after_events: Option<usize>,
    /// Session length cap, then `session_expired` and close 1001 (OpenAI: 60 minutes).
    pub max_session: Duration,
    /// How much faster than real time responses are generated (OpenAI generates faster than
    /// playback). 1.0 = real time.
    pub generation_speed: f64,
    /// Minimum speech run before `speech_started` fires.
    pub vad_min_speech_ms: u64,
    /// Drop every sideband socket after sending it this many server events (no close frame);
    /// the call goes on. `ws_fail_after*` do not apply to sidebands.
    pub sideband_fail_after_events: Option<usize>,
    /// `shutdown_date` announced for a model, shown by `GET /v1/models/{model}` (OpenAI's Model
    /// object carries it as a `YYYY-MM-DD` date, `null` when none is announced).
    pub model_shutdowns: HashMap<String, chrono::NaiveDate>,
}

impl SimConfig {
    /// Defaults: default sandbox scenario, no failures, 60-minute sessions, 4x generation.
    pub fn new(api_key: impl Into<String>, bind: SocketAddr) -> Self {
        SimConfig {
            api_key: api_key.into(),
            scenario: Scenario::default_sandbox(),
            bind,
            fail_next: None,
            ws_fail_after: None,
            ws_fail_after_events: None,
            max_session: Duration::from_secs(3_600),
            generation_speed: 4.0,
            vad_min_speech_ms: 80,
            sideband_fail_after_events: None,
            model_shutdowns: HashMap::new(),
        }
    }
}
