//! Standalone tools-svc. Configuration: see `.env.example`.

use callway_core::Settings;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let _telemetry = callway_core::telemetry::init(
        "tools-svc",
        settings.otel_exporter_otlp_endpoint.as_deref(),
        settings.rust_log.as_deref(),
    );
    let state = tools_svc::state_from_settings(&settings)?;
    let listener =
        std::net::TcpListener::bind((settings.callway_host.as_str(), settings.tools_svc_port))?;
    tracing::info!(addr = %listener.local_addr()?, leads = state.leads.kind(), "tools-svc listening");
    tools_svc::serve(listener, state)?.await?;
    Ok(())
}
