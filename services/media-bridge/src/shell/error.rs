//! The shell's one error type.

use callway_core::call_context::ContextError;
use callway_core::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("context store: {0}")]
    Context(#[from] ContextError),
    /// The OpenAI socket could not be opened (refused upgrade, TLS, DNS, ...).
    #[error("OpenAI connect: {0}")]
    OpenAiConnect(String),
    #[error("timed out: {0}")]
    Timeout(&'static str),
}
