//! What every call shares: the context store (the only shared mutable state), the Telnyx REST
//! client, the OpenAI endpoint, limits, and the shutdown switches.

use crate::core::BridgeConfig;
use crate::shell::half_open::HalfOpen;
use crate::shell::openai_ws::OpenAiEndpoint;
use callway_core::call_context::{CallContext, ContextStore};
use callway_core::config::ConfigError;
use callway_core::telnyx::TelnyxClient;
use callway_core::Settings;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// Adjusts each call's core config (tests, benchmarks).
pub type ConfigHook = Arc<dyn Fn(&mut BridgeConfig) + Send + Sync>;

/// Knobs with production defaults.
#[derive(Clone)]
pub struct Tuning {
    /// Concurrent calls; the next media socket gets 503 (Telnyx then reports `streaming.failed`).
    pub max_calls: usize,
    /// On shutdown, how long running calls may go on before they are cut.
    pub drain_deadline: Duration,
    /// How long after pick-up the bridge keeps checking the AMD verdict (premium AMD answers
    /// within its 5 s analysis window).
    pub amd_watch: Duration,
    /// Every context-store call is bounded by this.
    pub store_timeout: Duration,
    /// Whole hang-up command (the client retries inside it with the same `command_id`).
    pub hangup_timeout: Duration,
    /// Time a client has to send its whole request head, and a media socket to finish its
    /// upgrade once answered 101 (`CALLWAY_HTTP_HEADER_TIMEOUT_MS`).
    pub header_timeout: Duration,
    /// Sockets one address may hold before their request head is complete
    /// (`MEDIA_BRIDGE_HALF_OPEN_PER_IP`); IPv6 addresses count per /64.
    pub half_open_per_ip: usize,
    /// Same, all addresses together (`MEDIA_BRIDGE_HALF_OPEN_MAX`).
    pub half_open_max: usize,
    /// Warm transfer's human (`CALLWAY_TRANSFER_NUMBER`); `None`: the tool is not offered.
    pub transfer: Option<callway_core::retry::TransferTarget>,
    pub configure: Option<ConfigHook>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            max_calls: 200,
            drain_deadline: Duration::from_secs(30),
            amd_watch: Duration::from_secs(8),
            store_timeout: Duration::from_secs(2),
            hangup_timeout: Duration::from_secs(20),
            header_timeout: Duration::from_secs(10),
            half_open_per_ip: 16,
            half_open_max: 128,
            transfer: None,
            configure: None,
        }
    }
}

impl Tuning {
    /// The production defaults with what the settings change (limits are at least 1, the
    /// header timeout at least 100 ms).
    pub fn from_settings(settings: &Settings) -> Self {
        Tuning {
            max_calls: settings.media_bridge_max_calls.max(1),
            drain_deadline: Duration::from_secs(settings.media_bridge_drain_secs.max(1)),
            header_timeout: Duration::from_millis(settings.callway_http_header_timeout_ms.max(100)),
            half_open_per_ip: settings.media_bridge_half_open_per_ip.max(1),
            half_open_max: settings.media_bridge_half_open_max.max(1),
            ..Tuning::default()
        }
    }
}

pub(crate) struct Inner {
    pub contexts: ContextStore,
    pub telnyx: TelnyxClient,
    pub openai: OpenAiEndpoint,
    pub voice: String,
    pub tuning: Tuning,
    pub calls: Arc<Semaphore>,
    /// Sockets whose request head is not complete yet, per address.
    pub half_open: HalfOpen,
    pub shutting_down: AtomicBool,
    /// Set when the drain deadline passes: running calls close both sockets.
    pub hard_stop: watch::Sender<bool>,
}

/// The bridge server's shared state. Cheap to clone.
#[derive(Clone)]
pub struct BridgeState(pub(crate) Arc<Inner>);

impl BridgeState {
    pub fn new(
        contexts: ContextStore,
        telnyx: TelnyxClient,
        openai: OpenAiEndpoint,
        voice: String,
        tuning: Tuning,
    ) -> Self {
        let calls = Arc::new(Semaphore::new(tuning.max_calls));
        let half_open = HalfOpen::new(tuning.half_open_per_ip, tuning.half_open_max);
        BridgeState(Arc::new(Inner {
            contexts,
            telnyx,
            openai,
            voice,
            tuning,
            calls,
            half_open,
            shutting_down: AtomicBool::new(false),
            hard_stop: watch::channel(false).0,
        }))
    }

    /// Calls in progress.
    pub fn active_calls(&self) -> usize {
        self.0.tuning.max_calls - self.0.calls.available_permits()
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::Relaxed)
    }

    /// The core config for one call: the phone agent prompt (the first name in a delimited data
    /// block) and the web conversation to replay as conversation items.
    pub(crate) fn bridge_config(&self, ctx: &CallContext) -> BridgeConfig {
        use callway_core::call_context::CallKind;
        use callway_core::prompts;
        let instructions = match ctx.kind {
            CallKind::Callback => prompts::phone_instructions(&ctx.first_name),
            CallKind::InboundKnown => prompts::inbound_known_instructions(&ctx.first_name),
            CallKind::InboundUnknown => prompts::inbound_generic_instructions(),
        };
        let mut cfg = BridgeConfig::new(instructions);
        cfg.history = ctx
            .web_transcript
            .iter()
            .map(|t| crate::core::HistoryItem {
                role: match t.speaker {
                    callway_core::transcript::Speaker::Visitor => crate::core::HistoryRole::User,
                    callway_core::transcript::Speaker::Agent => crate::core::HistoryRole::Assistant,
                },
                text: t.text.clone(),
            })
            .collect();
        cfg.voice = self.0.voice.clone();
        // Offered when a human is there now; the hours are checked again when it is used.
        cfg.transfer = ctx.kind != CallKind::InboundUnknown
            && self
                .0
                .tuning
                .transfer
                .as_ref()
                .is_some_and(|t| t.hours.is_open(chrono::Utc::now()));
        if let Some(f) = &self.0.tuning.configure {
            f(&mut cfg);
        }
        cfg
    }
}

/// From the environment: needs `REDIS_URL` (unless `CALLWAY_SANDBOX`), `OPENAI_API_KEY` and the
/// `TELNYX_*` settings; the error names the first missing variable.
pub async fn state_from_settings(settings: &Settings) -> anyhow::Result<BridgeState> {
    // The phone agent's model too: a retired model refuses to start, one retiring soon warns.
    if let Some(key) = &settings.openai_api_key {
        callway_core::openai_models::check_at_startup(
            &settings.openai_base_url,
            key,
            &settings.openai_realtime_model,
            Duration::from_millis(settings.openai_timeout_ms.clamp(500, 30_000)),
        )
        .await?;
    }
    let contexts =
        ContextStore::from_settings(settings, callway_core::call_context::Process::Standalone)
            .await?;
    state_with_store(settings, contexts, Tuning::from_settings(settings))
}

/// Same, with a context store shared with other services in this process (the launcher).
pub fn state_with_store(
    settings: &Settings,
    contexts: ContextStore,
    mut tuning: Tuning,
) -> anyhow::Result<BridgeState> {
    super::telemetry::register_call_limit(tuning.max_calls);
    if tuning.transfer.is_none() {
        tuning.transfer = callway_core::retry::TransferTarget::from_settings(settings)?;
    }
    let key = settings
        .openai_api_key
        .clone()
        .ok_or(ConfigError::Missing("OPENAI_API_KEY"))?;
    let openai = OpenAiEndpoint::new(
        &settings.openai_base_url,
        &settings.openai_realtime_model,
        key,
        Duration::from_millis(settings.openai_timeout_ms.clamp(500, 30_000)),
    )
    .map_err(|reason| ConfigError::Invalid {
        name: "OPENAI_BASE_URL",
        reason,
    })?;
    let telnyx = TelnyxClient::from_settings(settings)?;
    Ok(BridgeState::new(
        contexts,
        telnyx,
        openai,
        settings.openai_voice.clone(),
        tuning,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::from_sources(None, env).unwrap()
    }

    #[tokio::test]
    async fn the_missing_setting_is_named() {
        let err = |s: Settings| async move {
            match state_from_settings(&s).await {
                Ok(_) => String::new(),
                Err(e) => e.to_string(),
            }
        };
        assert!(err(settings(&[])).await.contains("REDIS_URL"));
        let sandbox = [("CALLWAY_SANDBOX", "true")];
        assert!(err(settings(&sandbox)).await.contains("OPENAI_API_KEY"));
        let with_openai = [("CALLWAY_SANDBOX", "true"), ("OPENAI_API_KEY", "sk-x")];
        assert!(err(settings(&with_openai)).await.contains("TELNYX_API_KEY"));
        let bad_base = [
            ("CALLWAY_SANDBOX", "true"),
            ("OPENAI_API_KEY", "sk-x"),
            ("OPENAI_BASE_URL", "ftp://x"),
        ];
        assert!(err(settings(&bad_base)).await.contains("OPENAI_BASE_URL"));
        let all = [
            ("CALLWAY_SANDBOX", "true"),
            ("OPENAI_API_KEY", "sk-x"),
            ("TELNYX_API_KEY", "KEY"),
            ("TELNYX_CONNECTION_ID", "c"),
            ("TELNYX_FROM_NUMBER", "+33100000001"),
        ];
        callway_core::install_crypto_provider();
        let state = state_from_settings(&settings(&all)).await.unwrap();
        assert_eq!(state.active_calls(), 0);
        assert_eq!(state.0.tuning.max_calls, 200);
        assert_eq!(state.0.tuning.header_timeout, Duration::from_secs(10));
        assert_eq!(state.0.tuning.half_open_per_ip, 16);
        assert_eq!(state.0.tuning.half_open_max, 128);
        assert_eq!(state.0.contexts.kind(), ContextStore::memory().kind());
    }
}
