//! Standalone tools-svc. Configuration: see `.env.example`.

use callway_core::call_context::ContextStore;
use callway_core::Settings;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let _telemetry = callway_core::telemetry::init(
        "tools-svc",
        settings.otel_exporter_otlp_endpoint.as_deref(),
        settings.rust_log.as_deref(),
    );
    let mut state = tools_svc::state_from_settings(&settings)?;
    // trigger_call needs Telnyx and the shared call-context store (Redis: any media-bridge or
    // webhook-svc instance may pick the call up). Without Telnyx it answers 503.
    if settings.telnyx_api_key.is_some() {
        let redis = Settings::require::<str>("REDIS_URL", &settings.redis_url)?;
        let contexts = ContextStore::Redis(callway_core::redis_conn::connect(redis).await?);
        state.calls = tools_svc::calls_from_settings(&settings, contexts).await?;
    }
    let listener =
        std::net::TcpListener::bind((settings.callway_host.as_str(), settings.tools_svc_port))?;
    tracing::info!(
        addr = %listener.local_addr()?,
        leads = state.leads.kind(),
        calls = state.calls.is_some(),
        "tools-svc listening"
    );
    let timeouts = callway_core::http_timeouts::HttpTimeouts::from_settings(&settings);
    tools_svc::serve_with(listener, state, timeouts)?.await?;
    Ok(())
}
