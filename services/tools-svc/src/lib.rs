//! tools-svc: the agent's tools (`save_lead`, `trigger_call`), re-validated on the server because
//! the browser that relays them is untrusted.

mod call_events;
mod error;
mod health;
mod save_lead;
mod session;
mod trigger_call;

pub use trigger_call::CallDeps;

pub use error::ToolsError;
pub use health::report as health_report;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use callway_core::http_timeouts::{body_deadline, HttpTimeouts};
use callway_core::lead_store::LeadStore;
use callway_core::phone::PhonePolicy;
use callway_core::session_token::SessionTokens;
use std::net::TcpListener;

/// What the handlers need; built once at start-up.
#[derive(Clone)]
pub struct ToolsState {
    pub leads: LeadStore,
    pub tokens: SessionTokens,
    pub policy: PhonePolicy,
    pub consent_version: String,
    /// `None` when Telnyx is not configured: `trigger_call` then answers 503.
    pub calls: Option<CallDeps>,
}

/// Mounts the routes, so the all-in-one launcher and the standalone service share them.
pub fn configure(state: ToolsState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .app_data(callway_core::web::json_config(
                callway_core::web::MAX_JSON_BYTES,
            ))
            .route("/api/tools/save_lead", web::post().to(save_lead::save_lead))
            .route(
                "/api/tools/trigger_call",
                web::post().to(trigger_call::trigger_call),
            )
            .route(
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
            .configure(configure(state.clone()))
            .route("/health", web::get().to(health::health))
    })
    .client_request_timeout(timeouts.header)
    .client_disconnect_timeout(timeouts.disconnect)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Builds the state from settings; fails naming the first missing or invalid variable.
pub fn state_from_settings(
    settings: &callway_core::Settings,
) -> Result<ToolsState, callway_core::config::ConfigError> {
    Ok(ToolsState {
        leads: callway_core::lead_store::from_settings(settings, settings.callway_sandbox)?,
        tokens: SessionTokens::new(settings.session_secret()?),
        policy: settings.phone_policy()?,
        consent_version: settings.callway_consent_version.clone(),
        calls: None,
    })
}

/// Adds call placement when Telnyx is configured (needs Redis, or the sandbox's memory store).
pub async fn calls_from_settings(
    settings: &callway_core::Settings,
    contexts: callway_core::call_context::ContextStore,
) -> Result<Option<CallDeps>, callway_core::config::ConfigError> {
    if settings.telnyx_api_key.is_none() {
        return Ok(None);
    }
    let telnyx = callway_core::telnyx::TelnyxClient::from_settings(settings)?;
    Ok(Some(CallDeps {
        telnyx,
        contexts,
        stream_url: settings.media_stream_url()?,
        webhook_url: None,
        cooldown: std::time::Duration::from_secs(settings.callway_call_cooldown_secs),
        daily_cap: settings.callway_daily_call_cap,
    }))
}
