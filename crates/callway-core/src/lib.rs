//! Callway's shared core: domain types, stores, prompts, configuration and telemetry.

pub mod api_error;
pub mod call_context;
pub mod call_record;
pub mod client_addr;
pub mod config;
pub mod http_metrics;
pub mod http_timeouts;
pub mod json_error;
pub mod lead;
pub mod lead_store;
pub mod limits;
pub mod mask;
pub mod metrics;
pub mod openai_calls;
pub mod openai_models;
pub mod outbound;
pub mod phone;
pub mod prompts;
pub mod redis_conn;
pub mod retry;
pub mod secret;
pub mod session_token;
pub mod telemetry;
pub mod telnyx;
pub mod trace_mask;
pub mod transcript;
pub mod web;
pub mod web_call;

pub use config::Settings;

/// rustls needs one process-wide crypto provider and we build it with ring only (no aws-lc):
/// every TLS client here (reqwest for OpenAI, Telnyx, PostgREST and the OTLP exporter; the
/// bridge's WebSocket client) calls this first. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
