//! `cargo run`: every Callway service in one process on one port, with embedded defaults.
//!
//! With no keys set it is the keyless sandbox (embedded lead store, in-memory limits); with keys
//! set (see `.env.example`) the same command talks to the real OpenAI / Supabase.
//! Sub-commands for the RGPD duties: `callway delete-lead <phone>` and `callway purge-leads`.

use callway::{admin, site};
use callway_core::Settings;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let _telemetry = callway_core::telemetry::init(
        "callway",
        settings.otel_exporter_otlp_endpoint.as_deref(),
        settings.rust_log.as_deref(),
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => site::run(settings).await,
        Some("delete-lead") => admin::delete_lead(&settings, args.get(1).map(String::as_str)).await,
        Some("purge-leads") => admin::purge_leads(&settings).await,
        Some(other) => anyhow::bail!(
            "unknown command {other:?}; use: serve | delete-lead <phone> | purge-leads"
        ),
    }
}
