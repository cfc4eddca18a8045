//! Per-call configuration of the bridge core.

use std::time::Duration;

/// Server VAD settings sent in `session.update`.
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    pub threshold: f32,
    pub prefix_padding_ms: u32,
    pub silence_duration_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        // Phone lines carry a comfort-noise floor: a slightly higher threshold.
        VadConfig {
            threshold: 0.55,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
        }
    }
}

/// Who said one line of the conversation replayed at the start of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryRole {
    /// The visitor: replayed as a user message (`input_text`), user content, never instructions.
    User,
    /// Our web agent: replayed as an assistant message (`output_text`).
    Assistant,
}

/// One line of the web conversation the phone session starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryItem {
    pub role: HistoryRole,
    pub text: String,
}

/// What one call's bridge needs. Build with [`BridgeConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Full session instructions, built by the caller (agent prompt + delimited web summary).
    pub instructions: String,
    /// `audio.output.voice`; fixed for the session (cannot change after the first audio).
    pub voice: String,
    /// Input transcription model (`None` = no transcription).
    pub transcription_model: Option<String>,
    /// Transcription language hint (ISO 639-1), e.g. `fr`.
    pub transcription_language: Option<String>,
    pub vad: VadConfig,
    /// The web conversation, replayed as conversation items right after `session.update` and
    /// before the greeting, so the phone agent continues it.
    pub history: Vec<HistoryItem>,
    /// Stage direction added as a system message before the greeting `response.create`
    /// (`None`: the session instructions alone say how to greet).
    pub greeting_prompt: Option<String>,
    /// Stage direction for the goodbye when [`BridgeConfig::max_call`] is reached.
    pub max_call_goodbye_prompt: String,
    /// Hard cap on the call, counted from the Telnyx `start` frame.
    pub max_call: Duration,
    /// Telnyx `start` must arrive within this time of [`crate::Bridge::new`].
    pub media_start_timeout: Duration,
    /// Once the call media has started, OpenAI must have confirmed the session (`session.updated`)
    /// within this time.
    pub openai_ready_timeout: Duration,
    /// After a turn ends (`speech_stopped`) or we ask for a response, OpenAI must start one
    /// (`response.created`) within this time, or the session is considered dead.
    pub openai_response_timeout: Duration,
    /// Longest wait for the last audio to play before hanging up (goodbye, failure message).
    pub drain_timeout: Duration,
    /// Outbound frame size in ms of PCMU (Telnyx accepts 20 ms to 30 s per message).
    pub frame_ms: u32,
    /// A Telnyx mark is sent after this much outbound audio (and at the end of each item).
    pub mark_every_ms: u32,
    /// Inbound audio is appended to OpenAI in batches of at least this many ms (20 = per frame).
    pub inbound_batch_ms: u32,
    /// Out-of-order inbound frames: how many later frames may wait for a missing one...
    pub reorder_window: usize,
    /// ...and for how long, before the gap is skipped.
    pub reorder_wait: Duration,
    /// Hook for a polite failure: PCMU bytes (e.g. a recorded "sorry, we'll call you back")
    /// played before `HangUp { OpenAiFailed }`. `None`: hang up at once.
    pub failure_message_pcmu: Option<Vec<u8>>,
    /// Wall-clock time at [`crate::Bridge::new`]: with the injected instants it dates what the
    /// core must date (a qualification's meeting slot must be in the future) without reading a
    /// clock.
    pub wall_start: chrono::DateTime<chrono::Utc>,
    /// Offer the `transfer_to_human` tool (a human number is configured and it is within its
    /// hours when the call starts).
    pub transfer: bool,
}

impl BridgeConfig {
    /// Defaults for a French phone agent; `instructions` is the only required part.
    pub fn new(instructions: impl Into<String>) -> Self {
        BridgeConfig {
            instructions: instructions.into(),
            voice: "marin".into(),
            transcription_model: Some("gpt-4o-mini-transcribe".into()),
            transcription_language: Some("fr".into()),
            vad: VadConfig::default(),
            history: Vec::new(),
            greeting_prompt: None,
            max_call_goodbye_prompt: "La durée maximale de l'appel est atteinte. Dis au revoir \
                poliment en une phrase courte, sans poser de question."
                .into(),
            max_call: Duration::from_secs(15 * 60),
            media_start_timeout: Duration::from_secs(90),
            openai_ready_timeout: Duration::from_secs(8),
            openai_response_timeout: Duration::from_secs(15),
            drain_timeout: Duration::from_secs(20),
            frame_ms: 20,
            mark_every_ms: 200,
            inbound_batch_ms: 20,
            reorder_window: 3,
            reorder_wait: Duration::from_millis(60),
            failure_message_pcmu: None,
            wall_start: chrono::Utc::now(),
            transfer: false,
        }
    }

    /// Outbound frame size in bytes (8 bytes per ms of PCMU), at least 20 ms.
    pub(crate) fn frame_bytes(&self) -> usize {
        self.frame_ms.clamp(20, 1000) as usize * 8
    }
}
