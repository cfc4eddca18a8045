//! The sans-IO bridge core: frames and events in, frames and events out, time as an input.

mod bridge;
mod config;
mod io;
mod json_fast;
mod json_util;
pub mod openai_events;
pub mod playback;
pub mod reorder;
pub mod session;
pub mod telnyx_frames;

pub use bridge::Bridge;
pub use config::{BridgeConfig, HistoryItem, HistoryRole, VadConfig};
pub use io::{HangupReason, Input, LogLevel, Metric, Output, State, Stats};

#[cfg(test)]
mod bridge_tests;
