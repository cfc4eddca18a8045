//! The tokio shell around the sans-IO core: sockets, timers, the context store, Telnyx REST.

mod amd;
mod auth;
mod call;
mod error;
mod fail_closed;
mod half_open;
mod hangup;
mod io_threads;
mod openai_ws;
mod server;
mod state;
mod telemetry;
mod timeline;
mod transfer;
mod ws_io;

pub use auth::AUTH_HEADER;
pub use error::BridgeError;
pub use fail_closed::APOLOGY;
pub use openai_ws::OpenAiEndpoint;
pub use server::run;
pub use state::{state_from_settings, state_with_store, BridgeState, ConfigHook, Tuning};
pub use timeline::transcript_line;
