//! Standalone tools-svc. Configuration: see `.env.example`.

use callway_core::call_context::{ContextStore, Process};
use callway_core::Settings;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let _telemetry = callway_core::telemetry::init(
        "tools-svc",
        settings.otel_exporter_otlp_endpoint.as_deref(),
        settings.rust_log.as_deref(),
    );
    // Web calls, claims and call contexts live in Redis: any instance may hold any call.
    let contexts = ContextStore::from_settings(&settings, Process::Standalone).await?;
    let state = tools_svc::state_from_settings(&settings, contexts).await?;
    let sideband = tools_svc::sideband_from_settings(&settings, state.clone())?.spawn();
    // Missed callbacks' next attempts, fired by whichever instance claims them when due.
    let retries = tools_svc::retries::RetryWorker::from_settings(&settings, state.clone())?
        .map(|w| w.spawn());
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
    sideband.abort();
    if let Some(r) = retries {
        r.abort();
    }
    Ok(())
}
