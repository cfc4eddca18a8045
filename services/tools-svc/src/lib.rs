//! tools-svc: runs the web agent's tools on the server. A supervisor attaches a sideband to every
//! web voice call (OpenAI's own events, standard key) and executes `save_lead` and `trigger_call`
//! when the model calls them; the browser never executes a tool. It also serves the phone leg's
//! timeline to the page that asked for the call.

mod call_events;
mod error;
mod health;
pub mod retries;
mod session;
mod sideband;
pub mod tools;

pub use error::ToolsError;
pub use health::report as health_report;
pub use sideband::Sideband;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use callway_core::call_context::ContextStore;
use callway_core::http_timeouts::{body_deadline, HttpTimeouts};
use callway_core::lead_store::LeadStore;
use callway_core::limits::Limits;
use callway_core::openai_calls::CallControl;
use callway_core::phone::PhonePolicy;
use callway_core::session_token::SessionTokens;
use callway_core::telnyx::TelnyxClient;
use callway_core::web_call::WebCalls;
use std::net::TcpListener;
use std::time::Duration;

/// What placing calls needs; absent when Telnyx is not configured.
#[derive(Clone)]
pub struct CallDeps {
    pub telnyx: TelnyxClient,
    pub contexts: ContextStore,
    /// `wss://host/media/telnyx`; the one-time token is added as `?token=`.
    pub stream_url: String,
    pub webhook_url: Option<String>,
    pub cooldown: Duration,
    pub daily_cap: u64,
    /// How long an unconfirmed dial waits for `call.initiated`.
    pub dial_confirm: Duration,
}

/// What the tools and the sideband need; built once at start-up.
#[derive(Clone)]
pub struct ToolsState {
    pub leads: LeadStore,
    pub tokens: SessionTokens,
    pub policy: PhonePolicy,
    pub consent_version: String,
    pub web_calls: WebCalls,
    pub limits: Limits,
    pub call_control: CallControl,
    /// `None` when Telnyx is not configured: `trigger_call` then says calls are unavailable.
    pub calls: Option<CallDeps>,
    /// Business webhooks (`lead.created`); `None` when none are configured.
    pub business: Option<callway_core::outbound::Outbox>,
}

/// Mounts the routes, so the all-in-one launcher and the standalone service share them.
/// There is no tool route: tools run on the sideband only.
pub fn configure(state: ToolsState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(state)).route(
            "/api/calls/{call_id}/events",
            web::get().to(call_events::call_events),
        );
    }
}

/// The standalone service on `listener` (bind port 0 in tests).
pub fn serve(listener: TcpListener, state: ToolsState) -> std::io::Result<Server> {
    serve_with(listener, state, HttpTimeouts::default())
}

/// Same, with the request head and body timeouts of the settings (`main`).
pub fn serve_with(
    listener: TcpListener,
    state: ToolsState,
    timeouts: HttpTimeouts,
) -> std::io::Result<Server> {
    let server = HttpServer::new(move || {
        App::new()
            .wrap(from_fn(body_deadline(timeouts.body)))
            .wrap(tracing_actix_web::TracingLogger::default())
            .wrap(from_fn(callway_core::http_metrics::record))
            .configure(configure(state.clone()))
            .route("/health", web::get().to(health::health))
    })
    .client_request_timeout(timeouts.header)
    .client_disconnect_timeout(timeouts.disconnect)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Builds the state from settings and the shared store; fails naming the first missing or
/// invalid variable.
pub async fn state_from_settings(
    settings: &callway_core::Settings,
    contexts: ContextStore,
) -> Result<ToolsState, callway_core::config::ConfigError> {
    use callway_core::config::ConfigError;
    let api_key = settings
        .openai_api_key
        .clone()
        .ok_or(ConfigError::Missing("OPENAI_API_KEY"))?;
    Ok(ToolsState {
        leads: callway_core::lead_store::from_settings(settings, settings.callway_sandbox)?,
        tokens: SessionTokens::new(settings.session_secret()?),
        policy: settings.phone_policy()?,
        consent_version: settings.callway_consent_version.clone(),
        web_calls: WebCalls::new(contexts.clone()),
        limits: Limits::new(contexts.clone(), settings.limits_config()),
        call_control: CallControl::new(
            &settings.openai_base_url,
            api_key,
            Duration::from_millis(settings.openai_timeout_ms),
        )
        .map_err(|reason| ConfigError::Invalid {
            name: "OPENAI_BASE_URL",
            reason,
        })?,
        business: callway_core::outbound::outbox_from_settings(settings, contexts.clone())?,
        calls: calls_from_settings(settings, contexts)?,
    })
}

/// The sideband supervisor for `state` (start it with [`Sideband::spawn`]).
pub fn sideband_from_settings(
    settings: &callway_core::Settings,
    state: ToolsState,
) -> Result<Sideband, callway_core::config::ConfigError> {
    let key = state.call_control.api_key().clone();
    Sideband::new(
        state,
        &settings.openai_base_url,
        key,
        Duration::from_millis(settings.openai_timeout_ms),
        settings.callway_web_session_max_secs.max(5),
    )
    .map_err(|reason| callway_core::config::ConfigError::Invalid {
        name: "OPENAI_BASE_URL",
        reason,
    })
}

/// Call placement when Telnyx is configured.
pub fn calls_from_settings(
    settings: &callway_core::Settings,
    contexts: ContextStore,
) -> Result<Option<CallDeps>, callway_core::config::ConfigError> {
    if settings.telnyx_api_key.is_none() {
        return Ok(None);
    }
    let telnyx = TelnyxClient::from_settings(settings)?;
    Ok(Some(CallDeps {
        telnyx,
        contexts,
        stream_url: settings.media_stream_url()?,
        webhook_url: None,
        cooldown: Duration::from_secs(settings.callway_call_cooldown_secs),
        daily_cap: settings.callway_daily_call_cap,
        dial_confirm: Duration::from_secs(settings.callway_dial_confirm_secs.max(1)),
    }))
}
