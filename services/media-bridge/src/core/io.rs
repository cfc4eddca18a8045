//! What goes into and comes out of the bridge core.

use std::time::Duration;

/// An input to [`crate::Bridge::handle`]. Time is passed alongside, never read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// A raw text frame received on the Telnyx media WebSocket.
    TelnyxText(&'a str),
    /// A raw text frame received on the OpenAI Realtime WebSocket.
    OpenAiText(&'a str),
    /// The OpenAI WebSocket is open (may come before or after the Telnyx `start`).
    OpenAiConnected,
    /// The OpenAI WebSocket closed or could not be opened.
    OpenAiClosed { code: Option<u16>, reason: &'a str },
    /// The Telnyx media WebSocket closed.
    TelnyxClosed,
    /// Nothing arrived; the time returned by [`crate::Bridge::poll_timeout`] was reached.
    Tick,
    /// Something the agent must know and act on now (e.g. the human did not answer a transfer):
    /// added as a system message, then a response is asked for.
    Notice(&'a str),
}

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this JSON text frame on the Telnyx media WebSocket.
    ToTelnyx(String),
    /// Send this JSON text frame on the OpenAI WebSocket.
    ToOpenAi(String),
    /// Hang the call up via Telnyx Call Control (`POST /v2/calls/{call_control_id}/actions/hangup`).
    HangUp { reason: HangupReason },
    /// Close the OpenAI WebSocket (normal closure).
    CloseOpenAi,
    /// A measurement to record (span attribute, histogram).
    Metric(Metric),
    /// A log line. Never contains secrets, phone numbers or audio.
    Log { level: LogLevel, message: String },
    /// The agent recorded the prospect's qualification (validated): keep it for the call record.
    Qualification(Box<callway_core::call_record::Qualification>),
    /// The agent asked to hand the call to a human (`transfer_to_human`).
    Transfer { reason: String },
}

/// Why the bridge asks for a hang-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupReason {
    /// The model called `end_call` and its goodbye finished playing.
    AgentEnded,
    /// The maximum call duration was reached (after a goodbye).
    MaxDuration,
    /// OpenAI closed, failed, or did not answer in time.
    OpenAiFailed,
    /// The stream's media format is not PCMU 8 kHz mono.
    UnsupportedMediaFormat,
    /// Telnyx never sent `start`.
    NoMedia,
}

impl HangupReason {
    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupReason::AgentEnded => "agent_ended",
            HangupReason::MaxDuration => "max_duration",
            HangupReason::OpenAiFailed => "openai_failed",
            HangupReason::UnsupportedMediaFormat => "unsupported_media_format",
            HangupReason::NoMedia => "no_media",
        }
    }
}

/// Measurements the core makes from the injected times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// Voice-to-voice at the bridge: caller's `speech_stopped` → first outbound media frame of
    /// the response that answered it.
    TurnLatency {
        response_id: String,
        latency: Duration,
    },
    /// Telnyx `start` (pick-up) → first agent audio frame sent to Telnyx.
    FirstAgentAudio { latency: Duration },
    /// A barge-in cut the agent off.
    BargeIn {
        item_id: String,
        played_ms: u64,
        sent_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for Telnyx `start` and/or OpenAI `session.updated`.
    Connecting,
    /// Both sides up; audio flows.
    Live,
    /// Playing the last audio (goodbye or failure message) before hanging up.
    Ending,
    /// Done: the shell can drop the bridge once outputs are drained.
    Ended,
}

/// Counters for things that were ignored rather than acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub telnyx_malformed: u64,
    pub telnyx_unknown: u64,
    pub openai_malformed: u64,
    pub inbound_frames: u64,
    pub inbound_bytes: u64,
    /// Same sequence number as a frame still held for reordering.
    pub inbound_duplicates: u64,
    /// Behind the release point: a repeat of a frame already forwarded, or too late to place.
    pub inbound_late: u64,
    pub inbound_gaps_skipped: u64,
    /// Caller audio dropped because OpenAI was not ready (or the call was ending).
    pub inbound_dropped: u64,
    pub inbound_bad_payload: u64,
    pub outbound_frames: u64,
    /// Agent audio deltas dropped (cancelled response, ending call).
    pub outbound_deltas_dropped: u64,
    pub truncations: u64,
}
