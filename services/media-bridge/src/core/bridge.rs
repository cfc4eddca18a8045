//! The per-call state machine: Telnyx media stream on one side, OpenAI Realtime on the other.
//! No IO, no clock: the shell feeds [`Input`]s with the time and drains [`Output`]s.

use std::collections::VecDeque;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::json;

use super::config::BridgeConfig;
use super::io::{HangupReason, Input, LogLevel, Metric, Output, State, Stats};
use super::json_util::clip;
use super::openai_events::{self as oai, ApiError, ServerEvent};
use super::playback::{Playback, PCMU_BYTES_PER_MS};
use super::reorder::{Offer, Reorder};
use super::session::{self, END_CALL_TOOL, SESSION_UPDATE_EVENT_ID};
use super::telnyx_frames::{self as tx, MediaFrame, StreamStart, TelnyxFrame, Track};

/// How many ids of cancelled responses / truncated items / answered tool calls are remembered.
const ID_MEMORY: usize = 16;
/// Item id used for the failure message played from [`BridgeConfig::failure_message_pcmu`].
const FAILURE_ITEM: &str = "cw_failure_message";

#[derive(Debug, Clone, PartialEq, Eq)]
enum WaitFor {
    /// Only for queued audio to finish.
    Playback,
    /// For the next `response.created`, then that response.
    NextResponse,
    /// For `response.done` of this response, then its audio.
    Response(String),
}

#[derive(Debug)]
struct Ending {
    reason: HangupReason,
    deadline: Instant,
    wait: WaitFor,
}

/// A bounded set of recent ids.
#[derive(Debug, Default)]
struct RecentIds(VecDeque<String>);

impl RecentIds {
    fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|x| x == id)
    }
    /// Adds `id`; false if it was already there.
    fn insert(&mut self, id: &str) -> bool {
        if self.contains(id) {
            return false;
        }
        if self.0.len() >= ID_MEMORY {
            self.0.pop_front();
        }
        self.0.push_back(id.to_owned());
        true
    }
}

/// One call's bridge. See the crate docs for how a shell drives it.
#[derive(Debug)]
pub struct Bridge {
    cfg: BridgeConfig,
    created_at: Instant,
    state: State,
    out: VecDeque<Output>,
    stats: Stats,
    event_seq: u64,

    stream: Option<StreamStart>,
    started_at: Option<Instant>,

    openai_open: bool,
    session_ready: bool,

    reorder: Reorder<Vec<u8>>,
    inbound_acc: Vec<u8>,

    playback: Playback,
    active_response: Option<String>,
    cancelled_responses: RecentIds,
    truncated_items: RecentIds,
    answered_calls: RecentIds,
    tool_followup: bool,
    awaiting_response_since: Option<Instant>,
    speech_stopped_at: Option<Instant>,
    turn: Option<(String, Instant)>,
    first_audio_sent: bool,

    ending: Option<Ending>,
}

impl Bridge {
    /// A bridge for one call. Nothing is output until the first input.
    pub fn new(cfg: BridgeConfig, now: Instant) -> Self {
        let playback = Playback::new(cfg.frame_bytes(), u64::from(cfg.mark_every_ms), now);
        let reorder = Reorder::new(cfg.reorder_window, cfg.reorder_wait);
        Bridge {
            cfg,
            created_at: now,
            state: State::Connecting,
            out: VecDeque::new(),
            stats: Stats::default(),
            event_seq: 0,
            stream: None,
            started_at: None,
            openai_open: false,
            session_ready: false,
            reorder,
            inbound_acc: Vec::new(),
            playback,
            active_response: None,
            cancelled_responses: RecentIds::default(),
            truncated_items: RecentIds::default(),
            answered_calls: RecentIds::default(),
            tool_followup: false,
            awaiting_response_since: None,
            speech_stopped_at: None,
            turn: None,
            first_audio_sent: false,
            ending: None,
        }
    }

    /// Feeds one input observed at `now`.
    pub fn handle(&mut self, input: Input<'_>, now: Instant) {
        if self.state == State::Ended {
            return;
        }
        match input {
            Input::TelnyxText(text) => self.on_telnyx_text(text, now),
            Input::OpenAiText(text) => self.on_openai_text(text, now),
            Input::OpenAiConnected => {
                self.openai_open = true;
                self.send_openai(session::session_update(&self.cfg));
                // The web conversation, in order, before anything else: the greeting continues it.
                for i in 0..self.cfg.history.len() {
                    let id = self.event_id("history");
                    let frame = oai::history_message(&id, &self.cfg.history[i]);
                    self.send_openai(frame);
                }
                // Sent once, never needed again (no second session): a call's largest strings
                // are not kept for its whole length.
                self.cfg.instructions = String::new();
                self.cfg.history = Vec::new();
            }
            Input::OpenAiClosed { code, reason } => {
                self.openai_open = false;
                let why = format!(
                    "OpenAI socket closed (code {code:?}): {}",
                    clip(reason, 120)
                );
                self.fail_openai(&why, now);
            }
            Input::TelnyxClosed => self.end_of_stream("Telnyx socket closed"),
            Input::Tick => {}
            Input::Notice(text) => {
                if self.state == State::Live && self.openai_open {
                    let id = self.event_id("notice");
                    self.send_openai(oai::system_message(&id, &clip(text, 500)));
                    if self.active_response.is_some() {
                        self.tool_followup = true;
                    } else {
                        self.request_response(now);
                    }
                }
            }
        }
        self.on_time(now);
    }

    /// Next output for the shell, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When to call [`Bridge::handle`] with [`Input::Tick`] if nothing else arrives.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Ended {
            return None;
        }
        // Computed on every turn of the shell's loop: no allocation.
        let (mut media_start, mut openai_ready, mut max_call) = (None, None, None);
        match self.started_at {
            None => media_start = Some(self.created_at + self.cfg.media_start_timeout),
            Some(start) => {
                if !self.session_ready {
                    openai_ready = Some(start + self.cfg.openai_ready_timeout);
                }
                if self.state == State::Live {
                    max_call = Some(start + self.cfg.max_call);
                }
            }
        }
        [
            self.reorder.deadline(),
            media_start,
            openai_ready,
            max_call,
            self.awaiting_response_since
                .map(|t| t + self.cfg.openai_response_timeout),
            self.ending.as_ref().map(|e| e.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The Telnyx `start` frame, once received (call_control_id for the REST hang-up, etc.).
    pub fn stream(&self) -> Option<&StreamStart> {
        self.stream.as_ref()
    }

    /// The call's `call_control_id`, once the stream has started.
    pub fn call_control_id(&self) -> Option<&str> {
        self.stream.as_ref()?.call_control_id.as_deref()
    }

    // ----- helpers --------------------------------------------------------------------------

    fn send_openai(&mut self, frame: String) {
        self.out.push_back(Output::ToOpenAi(frame));
    }

    fn send_telnyx(&mut self, frame: String) {
        self.out.push_back(Output::ToTelnyx(frame));
    }

    fn log(&mut self, level: LogLevel, message: impl Into<String>) {
        self.out.push_back(Output::Log {
            level,
            message: message.into(),
        });
    }

    fn event_id(&mut self, what: &str) -> String {
        self.event_seq += 1;
        format!("cw_{what}_{}", self.event_seq)
    }

    fn media_started(&self) -> bool {
        self.started_at.is_some()
    }

    // ----- Telnyx side ----------------------------------------------------------------------

    fn on_telnyx_text(&mut self, text: &str, now: Instant) {
        let frame = match tx::parse(text) {
            Ok(frame) => frame,
            Err(e) => {
                self.stats.telnyx_malformed += 1;
                self.log(LogLevel::Debug, format!("telnyx: ignored frame: {e}"));
                return;
            }
        };
        match frame {
            TelnyxFrame::Media(m) => self.on_media(m, now),
            TelnyxFrame::Start(s) => self.on_start(s, now),
            other => {
                // Non-media events occupy their place in the stream-wide sequence.
                if let (Some(seq), true) = (other.sequence_number(), self.media_started()) {
                    self.reorder.offer(seq, None, now);
                }
                match other {
                    TelnyxFrame::Connected { version } => self.log(
                        LogLevel::Debug,
                        format!("telnyx: connected (version {version:?})"),
                    ),
                    TelnyxFrame::Mark { name, .. } => self.on_mark(&name, now),
                    TelnyxFrame::Dtmf { digit, .. } => {
                        self.log(LogLevel::Info, format!("telnyx: dtmf {}", clip(&digit, 4)))
                    }
                    TelnyxFrame::Stop { .. } => self.end_of_stream("Telnyx stop"),
                    TelnyxFrame::Error {
                        code,
                        title,
                        detail,
                        ..
                    } => self.log(
                        LogLevel::Warn,
                        format!("telnyx: stream error {code:?} {title}: {detail}"),
                    ),
                    TelnyxFrame::Unknown { event, .. } => {
                        self.stats.telnyx_unknown += 1;
                        self.log(LogLevel::Debug, format!("telnyx: unknown event {event}"));
                    }
                    TelnyxFrame::Media(_) | TelnyxFrame::Start(_) => {}
                }
            }
        }
    }

    fn on_start(&mut self, start: StreamStart, now: Instant) {
        if self.stream.is_some() {
            self.log(LogLevel::Warn, "telnyx: second start frame ignored");
            return;
        }
        let format_ok = start
            .media_format
            .as_ref()
            .is_some_and(|f| f.is_pcmu_8k_mono());
        if !format_ok {
            let described = start
                .media_format
                .as_ref()
                .map(|f| {
                    format!(
                        "{} {:?} Hz {:?} ch",
                        clip(&f.encoding, 24),
                        f.sample_rate,
                        f.channels
                    )
                })
                .unwrap_or_else(|| "missing".to_owned());
            self.log(
                LogLevel::Error,
                format!("telnyx: media format {described} is not PCMU/8000/1; hanging up"),
            );
            self.stream = Some(start);
            self.hang_up(HangupReason::UnsupportedMediaFormat);
            return;
        }
        if let Some(seq) = start.sequence_number {
            self.reorder.expect(seq + 1);
        }
        self.log(LogLevel::Info, "telnyx: media started");
        self.stream = Some(start);
        self.started_at = Some(now);
        self.maybe_greet(now);
    }

    fn on_media(&mut self, media: MediaFrame, now: Instant) {
        if !self.media_started() {
            self.stats.inbound_dropped += 1;
            return;
        }
        let bytes = match (media.track, B64.decode(media.payload.as_bytes())) {
            (Track::Inbound, Ok(bytes)) => Some(bytes),
            (Track::Inbound, Err(_)) => {
                self.stats.inbound_bad_payload += 1;
                None
            }
            // Our own audio echoed back with `both_tracks`: never feed it to the model.
            (Track::Outbound, _) => None,
        };
        match media.sequence_number {
            // The usual case, in order with nothing held: straight through.
            Some(seq) if self.reorder.take_in_order(seq) => {
                if let Some(bytes) = bytes {
                    self.forward_inbound(&bytes);
                }
            }
            Some(seq) => match self.reorder.offer(seq, bytes, now) {
                Offer::Accepted => {}
                Offer::Duplicate => self.stats.inbound_duplicates += 1,
                Offer::Late => self.stats.inbound_late += 1,
            },
            None => {
                if let Some(bytes) = bytes {
                    self.forward_inbound(&bytes);
                }
            }
        }
        self.release_inbound(now);
    }

    fn release_inbound(&mut self, now: Instant) {
        let mut ready = Vec::new();
        self.reorder.release(now, &mut ready);
        self.stats.inbound_gaps_skipped = self.reorder.gaps_skipped();
        for bytes in ready {
            self.forward_inbound(&bytes);
        }
    }

    fn forward_inbound(&mut self, bytes: &[u8]) {
        self.stats.inbound_frames += 1;
        self.stats.inbound_bytes += bytes.len() as u64;
        if !(self.session_ready && self.openai_open) || self.state != State::Live {
            self.stats.inbound_dropped += 1;
            return;
        }
        let batch = (self.cfg.inbound_batch_ms.max(1) as usize) * PCMU_BYTES_PER_MS as usize;
        if self.inbound_acc.is_empty() && bytes.len() >= batch {
            self.send_openai(oai::append_audio(bytes));
            return;
        }
        self.inbound_acc.extend_from_slice(bytes);
        if self.inbound_acc.len() >= batch {
            let chunk = std::mem::take(&mut self.inbound_acc);
            self.send_openai(oai::append_audio(&chunk));
        }
    }

    fn on_mark(&mut self, name: &str, now: Instant) {
        match self.playback.on_mark(name, now) {
            Some(ack) => self.log(
                LogLevel::Debug,
                format!(
                    "telnyx: mark {} played ({} ms of {})",
                    clip(name, 32),
                    ack.item_played_ms,
                    clip(&ack.item_id, 64)
                ),
            ),
            None => self.log(
                LogLevel::Debug,
                format!("telnyx: stale mark {}", clip(name, 32)),
            ),
        }
    }

    fn end_of_stream(&mut self, why: &str) {
        self.log(LogLevel::Info, format!("{why}: closing the OpenAI session"));
        if self.openai_open {
            self.out.push_back(Output::CloseOpenAi);
            self.openai_open = false;
        }
        self.ending = None;
        self.state = State::Ended;
    }

    // ----- OpenAI side ----------------------------------------------------------------------

    fn on_openai_text(&mut self, text: &str, now: Instant) {
        let event = match oai::parse(text) {
            Ok(ev) => ev,
            Err(e) => {
                self.stats.openai_malformed += 1;
                self.log(LogLevel::Debug, format!("openai: ignored event: {e}"));
                return;
            }
        };
        match event {
            ServerEvent::SessionCreated => self.log(LogLevel::Debug, "openai: session created"),
            ServerEvent::SessionUpdated => {
                if !self.session_ready {
                    self.session_ready = true;
                    self.log(LogLevel::Info, "openai: session configured");
                    self.maybe_greet(now);
                }
            }
            ServerEvent::SpeechStarted { .. } => self.on_speech_started(now),
            ServerEvent::SpeechStopped { .. } => {
                if self.state == State::Live {
                    self.speech_stopped_at = Some(now);
                    self.awaiting_response_since = Some(now);
                }
            }
            ServerEvent::ResponseCreated { response_id } => {
                self.awaiting_response_since = None;
                if let Some(t) = self.speech_stopped_at.take() {
                    self.turn = Some((response_id.clone(), t));
                }
                if let Some(e) = self.ending.as_mut() {
                    if e.wait == WaitFor::NextResponse {
                        e.wait = WaitFor::Response(response_id.clone());
                    }
                }
                self.active_response = Some(response_id);
            }
            ServerEvent::ResponseDone {
                response_id,
                status,
            } => self.on_response_done(&response_id, &status, now),
            ServerEvent::AudioDelta {
                response_id,
                item_id,
                delta,
            } => self.on_audio_delta(&response_id, &item_id, &delta, now),
            ServerEvent::AudioDone { response_id, .. } => {
                if self.accepts_audio_from(&response_id) {
                    self.finish_playback_item(&response_id, now);
                }
            }
            ServerEvent::FunctionCall {
                response_id,
                call_id,
                name,
                arguments,
            } => self.on_function_call(&response_id, &call_id, &name, &arguments, now),
            ServerEvent::Truncated {
                item_id,
                audio_end_ms,
            } => self.log(
                LogLevel::Debug,
                format!(
                    "openai: {} truncated at {audio_end_ms} ms",
                    clip(&item_id, 64)
                ),
            ),
            ServerEvent::Error(e) => self.on_api_error(e, now),
            ServerEvent::Other(_) => {}
        }
    }

    fn maybe_greet(&mut self, now: Instant) {
        if self.state != State::Connecting || !self.media_started() || !self.session_ready {
            return;
        }
        self.state = State::Live;
        if let Some(prompt) = self.cfg.greeting_prompt.clone() {
            let id = self.event_id("greeting_prompt");
            self.send_openai(oai::system_message(&id, &prompt));
        }
        let id = self.event_id("greeting");
        self.send_openai(oai::response_create(&id, None));
        self.awaiting_response_since = Some(now);
        self.log(LogLevel::Info, "bridge: live, greeting requested");
    }

    /// Whether deltas of this response may still be played.
    fn accepts_audio_from(&self, response_id: &str) -> bool {
        if self.cancelled_responses.contains(response_id) {
            return false;
        }
        match self.state {
            State::Live => true,
            State::Ending => self
                .ending
                .as_ref()
                .is_some_and(|e| e.wait == WaitFor::Response(response_id.to_owned())),
            State::Connecting | State::Ended => false,
        }
    }

    fn on_audio_delta(&mut self, response_id: &str, item_id: &str, delta: &str, now: Instant) {
        if !self.accepts_audio_from(response_id) {
            self.stats.outbound_deltas_dropped += 1;
            return;
        }
        let Ok(audio) = B64.decode(delta.as_bytes()) else {
            self.stats.outbound_deltas_dropped += 1;
            self.log(LogLevel::Warn, "openai: audio delta is not base64");
            return;
        };
        let mut sink = Vec::new();
        let frames = self
            .playback
            .push(response_id, item_id, &audio, now, &mut sink);
        self.emit_playback(sink, frames, response_id, now);
    }

    fn finish_playback_item(&mut self, response_id: &str, now: Instant) {
        let mut sink = Vec::new();
        let frames = self.playback.finish_item(now, &mut sink);
        self.emit_playback(sink, frames, response_id, now);
    }

    /// Sends playback frames to Telnyx and records first-audio / turn-latency metrics.
    fn emit_playback(&mut self, sink: Vec<String>, frames: usize, response_id: &str, now: Instant) {
        for frame in sink {
            self.send_telnyx(frame);
        }
        if frames == 0 {
            return;
        }
        self.stats.outbound_frames += frames as u64;
        if response_id == FAILURE_ITEM {
            return;
        }
        if !self.first_audio_sent {
            self.first_audio_sent = true;
            if let Some(start) = self.started_at {
                self.out.push_back(Output::Metric(Metric::FirstAgentAudio {
                    latency: now.saturating_duration_since(start),
                }));
            }
        }
        if self.turn.as_ref().is_some_and(|(id, _)| id == response_id) {
            if let Some((id, stopped)) = self.turn.take() {
                self.out.push_back(Output::Metric(Metric::TurnLatency {
                    response_id: id,
                    latency: now.saturating_duration_since(stopped),
                }));
            }
        }
    }

    fn on_response_done(&mut self, response_id: &str, status: &str, now: Instant) {
        if self.active_response.as_deref() == Some(response_id) {
            self.active_response = None;
        }
        if self.accepts_audio_from(response_id) {
            self.finish_playback_item(response_id, now);
        }
        if status == "failed" || status == "incomplete" {
            self.log(
                LogLevel::Warn,
                format!("openai: response {} {status}", clip(response_id, 64)),
            );
        }
        if let Some(e) = self.ending.as_mut() {
            if e.wait == WaitFor::Response(response_id.to_owned()) {
                e.wait = WaitFor::Playback;
            }
        }
        if self.tool_followup && self.state == State::Live {
            self.tool_followup = false;
            self.request_response(now);
        }
        self.check_ending(now);
    }

    fn request_response(&mut self, now: Instant) {
        let id = self.event_id("response");
        self.send_openai(oai::response_create(&id, None));
        self.awaiting_response_since = Some(now);
    }

    fn on_speech_started(&mut self, now: Instant) {
        if self.state != State::Live {
            return;
        }
        self.speech_stopped_at = None;
        self.turn = None;
        // The caller is talking: no response is due until their next `speech_stopped`.
        self.awaiting_response_since = None;
        // Server VAD cancels the active response itself (`interrupt_response`); we only make sure
        // none of its late audio is played.
        if let Some(id) = self.active_response.clone() {
            self.cancelled_responses.insert(&id);
        }
        self.interrupt_playback(now);
    }

    /// Clears Telnyx's queue and truncates the item the caller was hearing (once per item).
    fn interrupt_playback(&mut self, now: Instant) {
        if !self.playback.has_unconfirmed_audio() {
            return;
        }
        self.send_telnyx(tx::clear());
        let Some(cut) = self.playback.interrupt(now) else {
            return;
        };
        self.cancelled_responses.insert(&cut.response_id);
        if cut.item_id == FAILURE_ITEM || !self.truncated_items.insert(&cut.item_id) {
            return;
        }
        let id = self.event_id("truncate");
        self.send_openai(oai::truncate(&id, &cut.item_id, cut.audio_end_ms));
        self.stats.truncations += 1;
        self.out.push_back(Output::Metric(Metric::BargeIn {
            item_id: cut.item_id,
            played_ms: cut.audio_end_ms,
            sent_ms: cut.sent_ms,
        }));
    }

    fn on_function_call(
        &mut self,
        response_id: &str,
        call_id: &str,
        name: &str,
        arguments: &str,
        now: Instant,
    ) {
        if !self.answered_calls.insert(call_id) {
            return;
        }
        let id = self.event_id("tool_output");
        if name == END_CALL_TOOL {
            let reason = serde_json::from_str::<serde_json::Value>(arguments)
                .ok()
                .and_then(|v| v.get("reason")?.as_str().map(|s| clip(s, 32)))
                .unwrap_or_else(|| "unspecified".to_owned());
            self.log(LogLevel::Info, format!("openai: end_call ({reason})"));
            self.send_openai(oai::function_call_output(
                &id,
                call_id,
                &json!({"ok": true}).to_string(),
            ));
            if self.state != State::Live {
                return;
            }
            let wait = if self.active_response.as_deref() == Some(response_id) {
                WaitFor::Response(response_id.to_owned())
            } else {
                WaitFor::Playback
            };
            self.begin_ending(HangupReason::AgentEnded, wait, now);
        } else if name == session::TRANSFER_TOOL && self.cfg.transfer {
            let reason = serde_json::from_str::<serde_json::Value>(arguments)
                .ok()
                .and_then(|v| v.get("reason")?.as_str().map(|s| clip(s, 120)))
                .unwrap_or_default();
            self.log(
                LogLevel::Info,
                "openai: transfer to a human requested".to_owned(),
            );
            self.out.push_back(Output::Transfer { reason });
            let output = json!({"ok": true, "status": "transferring"});
            self.send_openai(oai::function_call_output(&id, call_id, &output.to_string()));
            if self.active_response.as_deref() == Some(response_id) {
                self.tool_followup = true;
            } else if self.state == State::Live {
                self.request_response(now);
            }
        } else if name == callway_core::call_record::RECORD_QUALIFICATION_TOOL {
            let wall = self.cfg.wall_start
                + chrono::Duration::from_std(now.saturating_duration_since(self.created_at))
                    .unwrap_or(chrono::Duration::zero());
            let output = match callway_core::call_record::Qualification::parse(arguments, wall) {
                Ok(q) => {
                    self.log(LogLevel::Info, "openai: qualification recorded".to_owned());
                    self.out.push_back(Output::Qualification(Box::new(q)));
                    json!({"ok": true})
                }
                // Said back to the model, which corrects and calls again.
                Err(e) => json!({"error": e.to_string()}),
            };
            self.send_openai(oai::function_call_output(&id, call_id, &output.to_string()));
            if self.active_response.as_deref() == Some(response_id) {
                self.tool_followup = true;
            } else if self.state == State::Live {
                self.request_response(now);
            }
        } else {
            self.log(
                LogLevel::Warn,
                format!("openai: unknown tool {}", clip(name, 64)),
            );
            self.send_openai(oai::function_call_output(
                &id,
                call_id,
                &json!({"error": "unknown tool"}).to_string(),
            ));
            if self.active_response.as_deref() == Some(response_id) {
                self.tool_followup = true;
            } else if self.state == State::Live {
                self.request_response(now);
            }
        }
    }

    fn on_api_error(&mut self, e: ApiError, now: Instant) {
        let rejected_config = e.event_id.as_deref() == Some(SESSION_UPDATE_EVENT_ID);
        let line = format!(
            "openai: error {} {:?}: {}",
            e.kind,
            e.code.as_deref().unwrap_or(""),
            e.message
        );
        if e.is_fatal() || rejected_config {
            self.fail_openai(&line, now);
        } else {
            let benign = matches!(
                e.code.as_deref(),
                Some("response_cancel_not_active" | "conversation_already_has_active_response")
            );
            self.log(
                if benign {
                    LogLevel::Debug
                } else {
                    LogLevel::Warn
                },
                line,
            );
        }
    }

    // ----- endings ---------------------------------------------------------------------------

    fn fail_openai(&mut self, why: &str, now: Instant) {
        if self.state == State::Ended
            || self
                .ending
                .as_ref()
                .is_some_and(|e| e.reason == HangupReason::OpenAiFailed)
        {
            return;
        }
        if self
            .ending
            .as_ref()
            .is_some_and(|e| e.wait == WaitFor::Playback)
        {
            // The last words are already queued at Telnyx: let them play out.
            self.log(
                LogLevel::Info,
                format!("bridge: OpenAI gone while ending: {why}"),
            );
            if self.openai_open {
                self.out.push_back(Output::CloseOpenAi);
                self.openai_open = false;
            }
            return;
        }
        self.log(LogLevel::Error, format!("bridge: OpenAI failed: {why}"));
        if self.openai_open {
            self.out.push_back(Output::CloseOpenAi);
            self.openai_open = false;
        }
        self.active_response = None;
        self.awaiting_response_since = None;
        if self.playback.has_unconfirmed_audio() {
            self.send_telnyx(tx::clear());
            self.playback.interrupt(now);
        }
        match self.cfg.failure_message_pcmu.clone() {
            Some(message) if self.media_started() && !message.is_empty() => {
                let mut sink = Vec::new();
                let mut frames =
                    self.playback
                        .push(FAILURE_ITEM, FAILURE_ITEM, &message, now, &mut sink);
                frames += self.playback.finish_item(now, &mut sink);
                self.emit_playback(sink, frames, FAILURE_ITEM, now);
                self.begin_ending(HangupReason::OpenAiFailed, WaitFor::Playback, now);
            }
            _ => self.hang_up(HangupReason::OpenAiFailed),
        }
    }

    fn begin_ending(&mut self, reason: HangupReason, wait: WaitFor, now: Instant) {
        self.state = State::Ending;
        self.inbound_acc.clear();
        self.ending = Some(Ending {
            reason,
            deadline: now + self.cfg.drain_timeout,
            wait,
        });
        self.check_ending(now);
    }

    fn check_ending(&mut self, now: Instant) {
        let Some(e) = self.ending.as_ref() else {
            return;
        };
        let done = e.wait == WaitFor::Playback && self.playback.is_drained();
        if done || now >= e.deadline {
            let reason = e.reason;
            if !done {
                self.log(
                    LogLevel::Warn,
                    "bridge: last audio not confirmed in time; hanging up",
                );
            }
            self.hang_up(reason);
        }
    }

    fn hang_up(&mut self, reason: HangupReason) {
        self.log(
            LogLevel::Info,
            format!("bridge: hang up ({})", reason.as_str()),
        );
        self.out.push_back(Output::HangUp { reason });
        if self.openai_open {
            self.out.push_back(Output::CloseOpenAi);
            self.openai_open = false;
        }
        self.ending = None;
        self.state = State::Ended;
    }

    fn max_call_reached(&mut self, now: Instant) {
        self.log(LogLevel::Info, "bridge: maximum call duration reached");
        if !(self.session_ready && self.openai_open) {
            self.hang_up(HangupReason::MaxDuration);
            return;
        }
        if let Some(id) = self.active_response.take() {
            self.cancelled_responses.insert(&id);
            let ev = self.event_id("cancel");
            self.send_openai(oai::response_cancel(&ev));
        }
        self.interrupt_playback(now);
        let prompt = self.cfg.max_call_goodbye_prompt.clone();
        let ev = self.event_id("goodbye_prompt");
        self.send_openai(oai::system_message(&ev, &prompt));
        let ev = self.event_id("goodbye");
        self.send_openai(oai::response_create(
            &ev,
            Some(json!({"tool_choice": "none"})),
        ));
        self.awaiting_response_since = Some(now);
        self.begin_ending(HangupReason::MaxDuration, WaitFor::NextResponse, now);
    }

    fn on_time(&mut self, now: Instant) {
        if self.state == State::Ended {
            return;
        }
        self.release_inbound(now);
        let Some(start) = self.started_at else {
            if self.state == State::Connecting
                && now >= self.created_at + self.cfg.media_start_timeout
            {
                self.log(LogLevel::Warn, "bridge: Telnyx media never started");
                self.hang_up(HangupReason::NoMedia);
            }
            return;
        };
        if !self.session_ready && now >= start + self.cfg.openai_ready_timeout {
            self.fail_openai("session not ready in time", now);
            return;
        }
        if let Some(since) = self.awaiting_response_since {
            if now >= since + self.cfg.openai_response_timeout {
                self.fail_openai("no response in time", now);
                return;
            }
        }
        if self.state == State::Live && now >= start + self.cfg.max_call {
            self.max_call_reached(now);
            return;
        }
        self.check_ending(now);
    }
}
