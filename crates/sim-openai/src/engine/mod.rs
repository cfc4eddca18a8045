//! The realtime session engine, sans IO: client events and input audio in, server events and
//! output audio out, time (since the session started) as an input. Transports (WebSocket, WebRTC)
//! drive it and call [`Engine::tick`] every 20 ms.

mod input;
mod items;
mod response;

use crate::errors::{self, error_event, FieldError};
use crate::ids::new_id;
use crate::recording::{SessionHandle, TransportKind};
use crate::scenario::Scenario;
use crate::session_config::{SessionConfig, UpdateLocks};
use crate::validate as v;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) use response::ActiveResponse;

/// Knobs from `SimConfig` that shape a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EngineOptions {
    pub generation_speed: f64,
    pub max_session: Duration,
    pub vad_min_speech_ms: u64,
}

/// What the engine asks its transport to do.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Output {
    /// A server event (JSON text frame / data channel message).
    Event(Value),
    /// WebRTC only: PCM at the track rate to queue for playback.
    Audio(Vec<i16>),
    /// WebRTC only: drop queued playback.
    ClearAudio,
    /// Close the session with this code and reason.
    Close { code: u16, reason: String },
}

/// A realtime session in progress.
pub(crate) struct Engine {
    pub(crate) session: SessionConfig,
    transport: TransportKind,
    /// Sample rate of the WebRTC track (48 kHz Opus or 8 kHz PCMU); unused on WebSocket.
    track_rate: u32,
    scenario: Scenario,
    step: usize,
    opts: EngineOptions,
    record: SessionHandle,
    out: Vec<Output>,
    conv: items::Conversation,
    input: input::InputState,
    response: Option<ActiveResponse>,
    playback: Option<response::Playback>,
    audio_produced: bool,
    user_turns: u32,
    pending_user_turn: bool,
    pending_tool_output: bool,
    /// A system message arrived mid-call: the next response is a `Trigger::Notice` step.
    pending_notice: bool,
    /// The last `function_call_output` received, parsed as JSON when it is JSON: scenario call
    /// arguments may refer to its fields as `{{output.FIELD}}` (a model reuses what a tool returned).
    last_tool_output: Option<serde_json::Value>,
    responses_started: u32,
    closed: bool,
}

const CLIENT_EVENT_TYPES: &[&str] = &[
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
];

/// Keys of the flat beta `session` shape.
const BETA_SESSION_KEYS: &[&str] = &[
    "modalities",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "input_audio_noise_reduction",
    "turn_detection",
    "temperature",
    "max_response_output_tokens",
];

impl Engine {
    /// Starts a session and queues `session.created`.
    pub(crate) fn new(
        session: SessionConfig,
        transport: TransportKind,
        track_rate: u32,
        scenario: Scenario,
        opts: EngineOptions,
        record: SessionHandle,
    ) -> Self {
        let mut e = Engine {
            session,
            transport,
            track_rate,
            scenario,
            step: 0,
            opts,
            record,
            out: vec![],
            conv: items::Conversation::default(),
            input: input::InputState::default(),
            response: None,
            playback: None,
            audio_produced: false,
            user_turns: 0,
            pending_user_turn: false,
            pending_tool_output: false,
            pending_notice: false,
            last_tool_output: None,
            responses_started: 0,
            closed: false,
        };
        let s = e.session.to_json();
        e.emit("session.created", json!({ "session": s }));
        e
    }

    /// WebRTC: the negotiated track's sample rate (48 kHz Opus, 8 kHz G.711).
    pub(crate) fn set_track_rate(&mut self, rate: u32) {
        self.track_rate = rate;
    }

    /// Everything the transport must do now, in order.
    pub(crate) fn take_output(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn emit(&mut self, ty: &str, body: Value) {
        let mut ev = json!({"type": ty, "event_id": new_id("event_")});
        if let (Some(dst), Value::Object(src)) = (ev.as_object_mut(), body) {
            dst.extend(src);
        }
        self.record
            .update(|r| r.server_event_types.push(ty.to_string()));
        self.out.push(Output::Event(ev));
    }

    fn emit_error(&mut self, err: FieldError, client_event_id: Option<&str>) {
        let ev = error_event(&err, client_event_id);
        self.record.update(|r| {
            r.server_event_types.push("error".into());
            r.errors_sent.push(ev.clone());
        });
        self.out.push(Output::Event(ev));
    }

    fn close(&mut self, code: u16, reason: &str) {
        self.closed = true;
        self.record.update(|r| r.closed_with = Some(code));
        self.out.push(Output::Close {
            code,
            reason: reason.to_string(),
        });
    }

    /// Advances generation, playback and the session clock.
    pub(crate) fn tick(&mut self, now: Duration) {
        if self.closed {
            return;
        }
        if now >= self.opts.max_session {
            let secs = self.opts.max_session.as_secs();
            let span = if secs.is_multiple_of(60) && secs > 0 {
                format!("{} minutes", secs / 60)
            } else {
                format!("{secs} seconds")
            };
            let message = format!("Your session hit the maximum duration of {span}.");
            self.emit_error(
                FieldError::new("session_expired", message.clone(), None),
                None,
            );
            self.close(1001, &message);
            return;
        }
        self.advance_response(now);
        self.advance_playback(now);
    }

    /// Handles one client event (a text frame / data channel message).
    pub(crate) fn handle_client_text(&mut self, text: &str, now: Duration) {
        if self.closed {
            return;
        }
        let parsed: Result<Value, _> = serde_json::from_str(text);
        let recorded = match &parsed {
            Ok(val) => redact_audio(val),
            Err(_) => json!({ "_unparsed": text }),
        };
        self.record.update(|r| r.client_events.push(recorded));
        let val = match parsed {
            Ok(v) => v,
            Err(e) => {
                return self.emit_error(
                    FieldError::new(
                        "invalid_json",
                        format!("The event is not valid JSON: {e}."),
                        None,
                    ),
                    None,
                )
            }
        };
        let Some(obj) = val.as_object() else {
            return self.emit_error(
                FieldError::new("invalid_event", "The event must be a JSON object.", None),
                None,
            );
        };
        let event_id = match obj.get("event_id") {
            None => None,
            Some(Value::String(s)) if s.len() <= 512 => Some(s.clone()),
            Some(Value::String(s)) => {
                return self.emit_error(
                    FieldError::new(
                        "string_above_max_length",
                        format!("Invalid 'event_id': string too long. Expected a string with maximum length 512, but got a string with length {} instead.", s.len()),
                        Some("event_id"),
                    ),
                    None,
                )
            }
            Some(other) => {
                let e = v::string(other, "event_id").err();
                return self.emit_error(e.unwrap_or_else(|| v::missing("event_id")), None);
            }
        };
        let eid = event_id.as_deref();
        let Some(ty) = obj.get("type") else {
            return self.emit_error(
                FieldError::new("invalid_event", "The 'type' field is missing.", None),
                eid,
            );
        };
        let ty = match v::string(ty, "type") {
            Ok(t) => t.to_string(),
            Err(e) => return self.emit_error(e, eid),
        };
        if ty == "transcription_session.update" {
            self.emit_error(errors::beta_disabled(), eid);
            return self.close(4000, errors::BETA_DISABLED_MESSAGE);
        }
        if !CLIENT_EVENT_TYPES.contains(&ty.as_str()) {
            return self.emit_error(v::invalid_value("type", &ty, CLIENT_EVENT_TYPES), eid);
        }
        let allowed: &[&str] = match ty.as_str() {
            "session.update" => &["type", "event_id", "session"],
            "input_audio_buffer.append" => &["type", "event_id", "audio"],
            "conversation.item.create" => &["type", "event_id", "previous_item_id", "item"],
            "conversation.item.retrieve" | "conversation.item.delete" => {
                &["type", "event_id", "item_id"]
            }
            "conversation.item.truncate" => &[
                "type",
                "event_id",
                "item_id",
                "content_index",
                "audio_end_ms",
            ],
            "response.create" => &["type", "event_id", "response"],
            "response.cancel" => &["type", "event_id", "response_id"],
            _ => &["type", "event_id"],
        };
        if let Err(e) = v::known_keys(obj, allowed, "") {
            return self.emit_error(e, eid);
        }
        let result = match ty.as_str() {
            "session.update" => self.on_session_update(obj),
            "input_audio_buffer.append" => self.on_append(obj, now),
            "input_audio_buffer.commit" => self.on_commit(),
            "input_audio_buffer.clear" => {
                self.input.clear();
                self.emit("input_audio_buffer.cleared", json!({}));
                Ok(())
            }
            "conversation.item.create" => self.on_item_create(obj),
            "conversation.item.retrieve" => self.on_item_retrieve(obj),
            "conversation.item.delete" => self.on_item_delete(obj),
            "conversation.item.truncate" => self.on_item_truncate(obj),
            "response.create" => self.on_response_create(obj, now),
            "response.cancel" => self.on_response_cancel(obj),
            "output_audio_buffer.clear" => self.on_output_clear(now),
            _ => Ok(()),
        };
        if let Err(Rejection::Error(e)) = result {
            self.emit_error(e, eid);
        } else if let Err(Rejection::Beta) = result {
            self.emit_error(errors::beta_disabled(), eid);
            self.close(4000, errors::BETA_DISABLED_MESSAGE);
        }
    }

    fn on_session_update(&mut self, obj: &v::Obj) -> Result<(), Rejection> {
        let s = v::required(obj, "session", "")?;
        if let Some(so) = s.as_object() {
            if !so.contains_key("type")
                && so.keys().any(|k| BETA_SESSION_KEYS.contains(&k.as_str()))
            {
                return Err(Rejection::Beta);
            }
        }
        let locks = UpdateLocks {
            connected: true,
            audio_produced: self.audio_produced,
        };
        let before_td = self.session.turn_detection.clone();
        self.session.apply(s, "session", locks)?;
        if self.session.turn_detection != before_td {
            self.input.reset_vad();
        }
        let sj = self.session.to_json();
        self.record.update(|r| r.session = sj.clone());
        self.emit("session.updated", json!({ "session": sj }));
        Ok(())
    }

    fn on_output_clear(&mut self, now: Duration) -> Result<(), Rejection> {
        if self.transport == TransportKind::WebSocket {
            return Err(Rejection::Error(FieldError::new(
                "invalid_value",
                "output_audio_buffer.clear is only supported for WebRTC and SIP sessions.",
                Some("type"),
            )));
        }
        let rid = self.clear_playback(now);
        self.emit("output_audio_buffer.cleared", json!({ "response_id": rid }));
        Ok(())
    }
}

/// Why a client event was refused.
pub(crate) enum Rejection {
    Error(FieldError),
    /// Beta wire shape: error then close 4000.
    Beta,
}

impl From<FieldError> for Rejection {
    fn from(e: FieldError) -> Self {
        Rejection::Error(e)
    }
}

/// A client event as recordings keep it (see [`crate::SessionRecord::client_events`]).
pub(crate) fn recorded_form(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(val) => redact_audio(&val),
        Err(_) => json!({ "_unparsed": text }),
    }
}

/// Replaces appended audio by its length so recordings stay small.
fn redact_audio(val: &Value) -> Value {
    let mut out = val.clone();
    if out["type"] == "input_audio_buffer.append" {
        if let Some(a) = out.get("audio").and_then(Value::as_str) {
            let n = a.len();
            out["audio"] = json!({ "_base64_chars": n });
        }
    }
    out
}
