//! Standalone token-svc. Configuration: see `.env.example`.

use callway_core::Settings;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let _telemetry = callway_core::telemetry::init(
        "token-svc",
        settings.otel_exporter_otlp_endpoint.as_deref(),
        settings.rust_log.as_deref(),
    );
    let state = token_svc::state_from_settings(&settings, None).await?;
    let listener =
        std::net::TcpListener::bind((settings.callway_host.as_str(), settings.token_svc_port))?;
    tracing::info!(addr = %listener.local_addr()?, store = state.web_calls.store().kind(), "token-svc listening");
    let timeouts = callway_core::http_timeouts::HttpTimeouts::from_settings(&settings);
    token_svc::serve_with(listener, state, timeouts)?.await?;
    Ok(())
}
