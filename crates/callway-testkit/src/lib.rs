//! Servers that tests start for themselves, on free ports, and stop when dropped.

pub mod jwt;
pub mod otlp;
pub mod pg;
pub mod ports;
pub mod postrust;
pub mod redis;
pub mod scripted_http;
pub mod sdp;
pub mod slow_client;
pub mod ws_sink;

/// rustls needs one process-wide crypto provider; we build with ring only.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Path of the workspace root (tests run with the crate as working directory).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(|p| p.to_path_buf())
        .unwrap_or(here)
}
pub use tokio_postgres;
