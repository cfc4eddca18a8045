//! token-svc: opens the page's voice session. The browser posts its SDP offer here; the server
//! creates the OpenAI Realtime call with the session fixed server side (model, instructions,
//! tools) and answers with the SDP answer and our signed web-session token. No OpenAI credential
//! reaches the browser; the agent's tools run on the server's sideband (tools-svc).

mod client;
mod error;
mod openai;
mod session;

pub use error::TokenError;
pub use openai::{CreatedCall, OpenAiClient, OpenAiConfig};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use callway_core::client_addr::TrustedProxies;
use callway_core::config::ConfigError;
use callway_core::http_timeouts::{body_deadline, HttpTimeouts};
use callway_core::limits::Limits;
use callway_core::openai_calls::CallControl;
use callway_core::session_token::SessionTokens;
use callway_core::web::{DependencyHealth, HealthReport};
use callway_core::web_call::WebCalls;
use callway_core::Settings;
use std::net::TcpListener;
use std::time::Duration;

#[derive(Clone)]
pub struct TokenState {
    pub openai: OpenAiClient,
    pub call_control: CallControl,
    pub tokens: SessionTokens,
    pub web_calls: WebCalls,
    pub limits: Limits,
    pub trusted: TrustedProxies,
    pub session_ttl_secs: u64,
    pub max_session_secs: u64,
    pub max_sessions: usize,
}

pub fn configure(state: TokenState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            // Past this actix answers 413 itself; up to it our own check answers in our shape.
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/api/realtime/session", web::post().to(session::create))
            .route("/api/realtime/session", web::get().to(session::status));
    }
}

pub async fn health_report(state: &TokenState) -> HealthReport {
    let store = state.web_calls.store();
    HealthReport::new(
        "token-svc",
        vec![DependencyHealth {
            name: "context_store",
            kind: store.kind().into(),
            ok: store.ping().await,
        }],
    )
}

async fn health(state: web::Data<TokenState>) -> HttpResponse {
    HttpResponse::Ok().json(health_report(&state).await)
}

/// The standalone service on `listener` with the default request timeouts.
pub fn serve(listener: TcpListener, state: TokenState) -> std::io::Result<Server> {
    serve_with(listener, state, HttpTimeouts::default())
}

/// Same, with the request head and body timeouts of the settings (`main`).
pub fn serve_with(
    listener: TcpListener,
    state: TokenState,
    timeouts: HttpTimeouts,
) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || {
        App::new()
            .wrap(from_fn(body_deadline(timeouts.body)))
            .wrap(tracing_actix_web::TracingLogger::default())
            .wrap(from_fn(callway_core::http_metrics::record))
            .configure(configure(state.clone()))
            .route("/health", web::get().to(health))
    })
    .client_request_timeout(timeouts.header)
    .client_disconnect_timeout(timeouts.disconnect)
    .listen(listener)?
    .run())
}

/// The OpenAI side from settings (shared by token-svc and the launcher's tests).
pub fn openai_from_settings(settings: &Settings) -> Result<OpenAiClient, ConfigError> {
    let api_key = settings
        .openai_api_key
        .clone()
        .ok_or(ConfigError::Missing("OPENAI_API_KEY"))?;
    OpenAiClient::new(OpenAiConfig {
        base_url: settings.openai_base_url.clone(),
        calls_url: settings
            .openai_realtime_calls_url
            .clone()
            .unwrap_or_else(|| {
                format!(
                    "{}/realtime/calls",
                    settings.openai_base_url.trim_end_matches('/')
                )
            }),
        api_key,
        model: settings.openai_realtime_model.clone(),
        voice: settings.openai_voice.clone(),
        timeout: Duration::from_millis(settings.openai_timeout_ms),
    })
    .map_err(|reason| ConfigError::Invalid {
        name: "OPENAI_BASE_URL",
        reason,
    })
}

/// Builds the state; checks the Realtime model with OpenAI first (a retired model refuses to
/// start). `contexts`: the shared store (Redis, or memory in the all-in-one sandbox).
pub async fn state_from_settings(
    settings: &Settings,
    contexts: Option<callway_core::call_context::ContextStore>,
) -> anyhow::Result<TokenState> {
    let openai = openai_from_settings(settings)?;
    let cfg = openai.config().clone();
    callway_core::openai_models::check_at_startup(
        &cfg.base_url,
        &cfg.api_key,
        &cfg.model,
        cfg.timeout,
    )
    .await?;
    let store = match contexts {
        Some(s) => s,
        None => {
            callway_core::call_context::ContextStore::from_settings(
                settings,
                callway_core::call_context::Process::Standalone,
            )
            .await?
        }
    };
    Ok(TokenState {
        call_control: CallControl::new(&cfg.base_url, cfg.api_key.clone(), cfg.timeout).map_err(
            |reason| ConfigError::Invalid {
                name: "OPENAI_BASE_URL",
                reason,
            },
        )?,
        openai,
        tokens: SessionTokens::new(settings.session_secret()?),
        web_calls: WebCalls::new(store.clone()),
        limits: Limits::new(store, settings.limits_config()),
        trusted: settings.trusted_proxies()?,
        session_ttl_secs: settings.callway_session_ttl_secs,
        max_session_secs: settings.callway_web_session_max_secs.max(5),
        max_sessions: settings.callway_max_web_sessions.max(1),
    })
}
