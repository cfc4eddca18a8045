//! media-bridge: joins a Telnyx media stream (WebSocket, JSON frames, PCMU 8 kHz) to an OpenAI
//! Realtime session (WebSocket, GA events, `audio/pcmu`), passing audio through untranscoded.
//!
//! The heart is [`Bridge`], a sans-IO state machine (after str0m): no threads, sockets or clock.
//! A shell owns the two WebSockets and a timer and loops:
//!
//! ```text
//! let mut bridge = Bridge::new(cfg, Instant::now());
//! loop {
//!     while let Some(out) = bridge.poll_output() {
//!         match out {
//!             Output::ToTelnyx(text)   => telnyx_ws.send_text(text),
//!             Output::ToOpenAi(text)   => openai_ws.send_text(text),
//!             Output::HangUp { reason } => telnyx_rest.hangup(bridge.call_control_id()),
//!             Output::CloseOpenAi      => openai_ws.close(1000),
//!             Output::Metric(m)        => record(m),
//!             Output::Log { level, message } => log(level, message),
//!         }
//!     }
//!     if bridge.state() == State::Ended { break; }
//!     select! {
//!         frame = telnyx_ws.next() => bridge.handle(Input::TelnyxText(&frame) /* or TelnyxClosed */, Instant::now()),
//!         frame = openai_ws.next() => bridge.handle(Input::OpenAiText(&frame) /* or OpenAiClosed */, Instant::now()),
//!         ()    = openai_connected  => bridge.handle(Input::OpenAiConnected, Instant::now()),
//!         ()    = sleep_until(bridge.poll_timeout()) => bridge.handle(Input::Tick, Instant::now()),
//!     }
//! }
//! ```
//!
//! The shell also authenticates the media socket (token in the stream URL) and loads the call
//! context *before* building the [`BridgeConfig`], may connect OpenAI before Telnyx's `start`
//! (pre-warm), ignores binary frames, and sends everything in output order.

pub mod core;
pub mod shell;

pub use crate::core::{
    Bridge, BridgeConfig, HangupReason, HistoryItem, HistoryRole, Input, LogLevel, Metric, Output,
    State, Stats, VadConfig,
};
pub use crate::shell::{
    run, state_from_settings, state_with_store, BridgeError, BridgeState, OpenAiEndpoint, Tuning,
};
