//! Standalone webhook-svc. Configuration: see `.env.example`.

use callway_core::call_context::{ContextStore, Process};
use callway_core::Settings;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let _telemetry = callway_core::telemetry::init(
        "webhook-svc",
        settings.otel_exporter_otlp_endpoint.as_deref(),
        settings.rust_log.as_deref(),
    );
    let contexts = ContextStore::from_settings(&settings, Process::Standalone).await?;
    let leads = callway_core::lead_store::from_settings(&settings, settings.callway_sandbox)?;
    let state = webhook_svc::state_from_settings(&settings, contexts, leads)?;
    // Business webhooks are delivered by every instance (claims are leases on the outbox).
    let deliverer =
        webhook_svc::deliver::Deliverer::from_settings(&settings, state.business.clone())?
            .map(|d| d.spawn());
    let listener =
        std::net::TcpListener::bind((settings.callway_host.as_str(), settings.webhook_svc_port))?;
    tracing::info!(addr = %listener.local_addr()?, "webhook-svc listening");
    let timeouts = callway_core::http_timeouts::HttpTimeouts::from_settings(&settings);
    webhook_svc::serve_with(listener, state, timeouts)?.await?;
    if let Some(d) = deliverer {
        d.abort();
    }
    Ok(())
}
