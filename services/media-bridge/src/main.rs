//! media-bridge: binds CALLWAY_HOST:MEDIA_BRIDGE_PORT and serves Telnyx media streams until
//! SIGTERM or Ctrl-C, then drains running calls.

use callway_core::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    let _telemetry = callway_core::telemetry::init(
        "media-bridge",
        settings.otel_exporter_otlp_endpoint.as_deref(),
        settings.rust_log.as_deref(),
    );
    callway_core::install_crypto_provider();
    let state = media_bridge::state_from_settings(&settings).await?;
    let listener =
        tokio::net::TcpListener::bind((settings.callway_host.as_str(), settings.media_bridge_port))
            .await?;
    tracing::info!(addr = %listener.local_addr()?, "media-bridge listening");
    media_bridge::run(listener, state, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
