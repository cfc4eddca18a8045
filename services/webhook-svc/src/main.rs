//! Standalone webhook-svc. Configuration: see `.env.example`.

use callway_core::call_context::ContextStore;
use callway_core::config::ConfigError;
use callway_core::Settings;
use webhook_svc::{WebhookKey, WebhookState};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let _telemetry = callway_core::telemetry::init(
        "webhook-svc",
        settings.otel_exporter_otlp_endpoint.as_deref(),
        settings.rust_log.as_deref(),
    );
    let key = Settings::require::<str>("TELNYX_PUBLIC_KEY", &settings.telnyx_public_key)?;
    let key = WebhookKey::from_base64(key).map_err(|reason| ConfigError::Invalid {
        name: "TELNYX_PUBLIC_KEY",
        reason,
    })?;
    let redis = Settings::require::<str>("REDIS_URL", &settings.redis_url)?;
    let contexts = ContextStore::Redis(callway_core::redis_conn::connect(redis).await?);
    let telnyx = callway_core::telnyx::TelnyxClient::from_settings(&settings)?;
    let state = WebhookState {
        key,
        contexts,
        leads: callway_core::lead_store::from_settings(&settings, settings.callway_sandbox)?,
        telnyx: Some(telnyx),
        voicemail: webhook_svc::voicemail_action(&settings)?,
    };
    let listener =
        std::net::TcpListener::bind((settings.callway_host.as_str(), settings.webhook_svc_port))?;
    tracing::info!(addr = %listener.local_addr()?, "webhook-svc listening");
    let timeouts = callway_core::http_timeouts::HttpTimeouts::from_settings(&settings);
    webhook_svc::serve_with(listener, state, timeouts)?.await?;
    Ok(())
}
