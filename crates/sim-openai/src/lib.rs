//! Protocol-faithful local OpenAI Realtime simulator (GA interface): client secrets REST,
//! WebRTC calls (a real str0m peer with Opus audio and the `oai-events` data channel) and
//! WebSocket sessions, scripted by a [`Scenario`]; the unified interface (multipart
//! `/v1/realtime/calls`), sideband sockets on calls, hang-up, and the Models endpoints. It
//! rejects what OpenAI rejects.
//!
//! See the crate README for the endpoints, the knobs and what is simulated how.

mod alaw;
mod call_form;
mod calls;
mod client_secrets;
mod config;
mod engine;
pub mod errors;
mod http;
pub mod ids;
mod live_call;
mod models;
mod multipart;
pub mod recording;
pub mod scenario;
pub mod session_config;
mod sideband;
mod sim;
mod state;
mod validate;
pub mod voice;
mod webrtc;
mod ws;

/// The type of [`SimConfig::model_shutdowns`] values (a calendar date, as OpenAI's `Model`
/// object shows `shutdown_date`).
pub use chrono::NaiveDate;
pub use config::{Failure, SidebandRefusal, SimConfig};
pub use recording::{
    CallCreation, CallEnd, CallEndReason, CallRecord, Moment, Recording, SessionRecord,
    SidebandEnd, SidebandEndKind, SidebandEvent, SidebandRecord, ToolCallRecord, TransportKind,
};
pub use scenario::{Scenario, Step, ToolCall, Trigger};
pub use sim::OpenAiSim;
