//! webhook-svc: Telnyx call events, verified on raw bytes, handled before they are acknowledged
//! (a 2xx means the effects are stored; anything else makes Telnyx send the event again).

pub mod deliver;
mod error;
mod events;
mod handle;
mod inbound;
#[cfg(test)]
mod parse_props;
mod receive;
pub mod signature;
mod transfer;

pub use error::WebhookError;
pub use handle::{outcome, voicemail_message, Answerer, VoicemailAction, VOICEMAIL_MESSAGE};
pub use signature::WebhookKey;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse, HttpServer};
use callway_core::call_context::ContextStore;
use callway_core::config::ConfigError;
use callway_core::http_timeouts::{body_deadline, HttpTimeouts};
use callway_core::lead_store::LeadStore;
use callway_core::telnyx::TelnyxClient;
use callway_core::web::{DependencyHealth, HealthReport};
use std::net::TcpListener;

/// Largest webhook body we read (Telnyx events are a few KiB).
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

#[derive(Clone)]
pub struct WebhookState {
    pub key: WebhookKey,
    pub contexts: ContextStore,
    pub leads: LeadStore,
    /// For voicemail handling and hang-ups; `None` only in tests that do not need it.
    pub telnyx: Option<TelnyxClient>,
    pub voicemail: VoicemailAction,
    /// Business webhooks (`call.ended`); `None` when none are configured.
    pub business: Option<callway_core::outbound::Outbox>,
    /// Missed callbacks to try again (`keys::Queue::Retry`; tools-svc dials them); `None`: never.
    pub retries: Option<callway_core::outbound::Outbox>,
    pub retry_policy: callway_core::retry::RetryPolicy,
    /// Our number, said on a voicemail when another attempt will follow.
    pub callback_number: Option<String>,
    /// `wss://…/media/telnyx` for incoming calls' streams (`None`: incoming calls are ignored).
    pub stream_url: Option<String>,
    /// How far back an incoming caller's lead is looked for (`CALLWAY_LEAD_RETENTION_DAYS`).
    pub retention_days: u32,
}

/// The state from the settings, on the stores the caller decided (`ContextStore::from_settings`
/// and `lead_store::from_settings`; the launcher shares them with the other services).
pub fn state_from_settings(
    settings: &callway_core::Settings,
    contexts: ContextStore,
    leads: LeadStore,
) -> Result<WebhookState, ConfigError> {
    let key =
        callway_core::Settings::require::<str>("TELNYX_PUBLIC_KEY", &settings.telnyx_public_key)?;
    let key = WebhookKey::from_base64(key).map_err(|reason| ConfigError::Invalid {
        name: "TELNYX_PUBLIC_KEY",
        reason,
    })?;
    // One attempt per command: a failed command fails the delivery, and Telnyx's redelivery
    // is the retry (with the same command_id).
    let telnyx = TelnyxClient::from_settings(settings)?.with_attempts(1);
    Ok(WebhookState {
        key,
        business: callway_core::outbound::outbox_from_settings(settings, contexts.clone())?,
        retries: Some(callway_core::outbound::retry_queue(contexts.clone())),
        retry_policy: callway_core::retry::RetryPolicy::from_settings(settings)?,
        callback_number: settings.telnyx_from_number.clone(),
        stream_url: settings.media_stream_url().ok(),
        retention_days: settings.callway_lead_retention_days,
        contexts,
        leads,
        telnyx: Some(telnyx),
        voicemail: voicemail_action(settings)?,
    })
}

pub fn configure(state: WebhookState) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(MAX_WEBHOOK_BYTES))
            .route("/api/telnyx/webhooks", web::post().to(receive::receive));
    }
}

pub async fn health_report(state: &WebhookState) -> HealthReport {
    HealthReport::new(
        "webhook-svc",
        vec![
            DependencyHealth {
                name: "context_store",
                kind: state.contexts.kind().into(),
                ok: state.contexts.ping().await,
            },
            DependencyHealth {
                name: "lead_store",
                kind: state.leads.kind().into(),
                ok: state.leads.ping().await.is_ok(),
            },
        ],
    )
}

async fn health(state: web::Data<WebhookState>) -> HttpResponse {
    HttpResponse::Ok().json(health_report(&state).await)
}

/// The standalone service on `listener` with the default request timeouts.
pub fn serve(listener: TcpListener, state: WebhookState) -> std::io::Result<Server> {
    serve_with(listener, state, HttpTimeouts::default())
}

/// Same, with the request head and body timeouts of the settings (`main`).
pub fn serve_with(
    listener: TcpListener,
    state: WebhookState,
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

pub fn voicemail_action(settings: &callway_core::Settings) -> Result<VoicemailAction, ConfigError> {
    match settings.callway_voicemail_action.as_str() {
        "message" => Ok(VoicemailAction::Message),
        "hangup" => Ok(VoicemailAction::HangUp),
        other => Err(ConfigError::Invalid {
            name: "CALLWAY_VOICEMAIL_ACTION",
            reason: format!("{other:?} is not message or hangup"),
        }),
    }
}
