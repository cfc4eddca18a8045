//! token-svc: mints what a page needs to open a voice session (an OpenAI ephemeral client secret
//! and our signed web-session token). The OpenAI key never leaves this service.

mod error;
mod mint;
mod openai;
mod rate_limit;

pub use error::TokenError;
pub use openai::{OpenAiClient, OpenAiConfig};
pub use rate_limit::RateLimiter;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use callway_core::config::ConfigError;
use callway_core::http_timeouts::{body_deadline, HttpTimeouts};
use callway_core::session_token::SessionTokens;
use callway_core::web::{DependencyHealth, HealthReport};
use callway_core::Settings;
use std::net::TcpListener;
use std::time::Duration;

#[derive(Clone)]
pub struct TokenState {
    pub openai: OpenAiClient,
    pub tokens: SessionTokens,
    pub limiter: RateLimiter,
    pub session_ttl_secs: u64,
    pub realtime_calls_url: String,
}

pub fn configure(state: TokenState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .route("/api/realtime-token", web::post().to(mint::mint));
    }
}

pub async fn health_report(state: &TokenState) -> HealthReport {
    let limiter_ok = state.limiter.ping().await;
    HealthReport::new(
        "token-svc",
        vec![DependencyHealth {
            name: "rate_limiter",
            kind: state.limiter.kind().into(),
            ok: limiter_ok,
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
            .configure(configure(state.clone()))
            .route("/health", web::get().to(health))
    })
    .client_request_timeout(timeouts.header)
    .client_disconnect_timeout(timeouts.disconnect)
    .listen(listener)?
    .run())
}

/// Mints per client and window: 10 sessions a minute is plenty for a person, little for a script.
pub const TOKENS_PER_MINUTE: u64 = 10;

pub async fn state_from_settings(settings: &Settings) -> Result<TokenState, ConfigError> {
    let api_key = settings
        .openai_api_key
        .clone()
        .ok_or(ConfigError::Missing("OPENAI_API_KEY"))?;
    let openai = OpenAiClient::new(OpenAiConfig {
        base_url: settings.openai_base_url.clone(),
        api_key,
        model: settings.openai_realtime_model.clone(),
        voice: settings.openai_voice.clone(),
        timeout: Duration::from_millis(settings.openai_timeout_ms),
        secret_ttl_secs: 120,
    })
    .map_err(|reason| ConfigError::Invalid {
        name: "OPENAI_BASE_URL",
        reason,
    })?;
    let limiter = match &settings.redis_url {
        Some(url) => RateLimiter::Redis {
            limit: TOKENS_PER_MINUTE,
            window_secs: 60,
            conn: callway_core::redis_conn::connect(url).await.map_err(|e| {
                ConfigError::Invalid {
                    name: "REDIS_URL",
                    reason: e.to_string(),
                }
            })?,
        },
        None if settings.callway_sandbox => RateLimiter::memory(TOKENS_PER_MINUTE, 60),
        None => return Err(ConfigError::Missing("REDIS_URL")),
    };
    Ok(TokenState {
        openai,
        tokens: SessionTokens::new(settings.session_secret()?),
        limiter,
        session_ttl_secs: settings.callway_session_ttl_secs,
        realtime_calls_url: settings
            .openai_realtime_calls_url
            .clone()
            .unwrap_or_else(|| {
                format!(
                    "{}/realtime/calls",
                    settings.openai_base_url.trim_end_matches('/')
                )
            }),
    })
}
