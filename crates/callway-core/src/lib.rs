//! Callway's shared core: domain types, stores, prompts, configuration and telemetry.

pub mod api_error;
pub mod call_context;
pub mod config;
pub mod lead;
pub mod lead_store;
pub mod mask;
pub mod phone;
pub mod prompts;
pub mod redis_conn;
pub mod secret;
pub mod session_token;
pub mod telemetry;
pub mod telnyx;
pub mod web;

pub use config::Settings;
