//! OpenAI Realtime (GA) events over the WebSocket: the server events the bridge uses, and the
//! client events it sends. Everything else is parsed as [`ServerEvent::Other`] and ignored.

use serde_json::{json, Value};

use super::json_util::{clip, str_field, string_field, u64_field};

/// A server event the bridge acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    SessionCreated,
    SessionUpdated,
    /// `input_audio_buffer.speech_started`: the caller started talking (barge-in trigger).
    SpeechStarted {
        audio_start_ms: Option<u64>,
    },
    /// `input_audio_buffer.speech_stopped`: end of the caller's turn (latency clock starts).
    SpeechStopped {
        audio_end_ms: Option<u64>,
    },
    ResponseCreated {
        response_id: String,
    },
    /// `response.done`; `status` is `completed`, `cancelled`, `failed` or `incomplete`.
    ResponseDone {
        response_id: String,
        status: String,
    },
    /// `response.output_audio.delta`: base64 audio in the session's output format (PCMU here).
    AudioDelta {
        response_id: String,
        item_id: String,
        delta: String,
    },
    /// `response.output_audio.done`: the audio part of an item is complete.
    AudioDone {
        response_id: String,
        item_id: String,
    },
    /// `response.function_call_arguments.done`.
    FunctionCall {
        response_id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
    /// `conversation.item.truncated`.
    Truncated {
        item_id: String,
        audio_end_ms: u64,
    },
    Error(ApiError),
    /// Any other (valid) event; carries the type for logging.
    Other(String),
}

/// The `error` object of an `error` event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ApiError {
    pub kind: String,
    pub code: Option<String>,
    pub message: String,
    /// The `event_id` of the client event that caused it, when known.
    pub event_id: Option<String>,
}

/// Error codes after which the session is unusable.
const FATAL_CODES: &[&str] = &[
    "session_expired",
    "beta_api_shape_disabled",
    "invalid_model",
    "invalid_api_key",
    "insufficient_quota",
];

impl ApiError {
    /// True when the session cannot go on. Most Realtime errors are recoverable (the session
    /// stays open), e.g. `conversation_already_has_active_response`, `response_cancel_not_active`.
    pub fn is_fatal(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| FATAL_CODES.contains(&c))
            || matches!(
                self.kind.as_str(),
                "authentication_error" | "permission_error"
            )
    }
}

/// Why a server text frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    NotJson,
    NoType,
    MissingField(&'static str),
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::NotJson => write!(f, "event is not JSON"),
            EventError::NoType => write!(f, "event has no string `type`"),
            EventError::MissingField(field) => write!(f, "event lacks `{field}`"),
        }
    }
}

fn req(v: &Value, key: &'static str) -> Result<String, EventError> {
    string_field(v, key).ok_or(EventError::MissingField(key))
}

/// Parses one server text frame: audio deltas (most of the traffic) without a `Value` tree when
/// they can be read exactly that way, everything else by [`parse_general`]. Same result.
pub fn parse(text: &str) -> Result<ServerEvent, EventError> {
    if text.contains("\"response.output_audio.delta\"") {
        if let Ok(d) = serde_json::from_str::<super::json_fast::AudioDelta>(text) {
            if d.ty == "response.output_audio.delta" {
                return Ok(ServerEvent::AudioDelta {
                    response_id: d.response_id.to_owned(),
                    item_id: d.item_id.to_owned(),
                    delta: d.delta.to_owned(),
                });
            }
        }
    }
    parse_general(text)
}

/// Parses one server text frame through a `serde_json::Value`.
pub fn parse_general(text: &str) -> Result<ServerEvent, EventError> {
    let v: Value = serde_json::from_str(text).map_err(|_| EventError::NotJson)?;
    let ty = str_field(&v, "type").ok_or(EventError::NoType)?;
    let ev = match ty {
        "session.created" => ServerEvent::SessionCreated,
        "session.updated" => ServerEvent::SessionUpdated,
        "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted {
            audio_start_ms: u64_field(&v, "audio_start_ms"),
        },
        "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped {
            audio_end_ms: u64_field(&v, "audio_end_ms"),
        },
        "response.created" | "response.done" => {
            let response = v
                .get("response")
                .ok_or(EventError::MissingField("response"))?;
            let response_id =
                string_field(response, "id").ok_or(EventError::MissingField("response.id"))?;
            if ty == "response.created" {
                ServerEvent::ResponseCreated { response_id }
            } else {
                ServerEvent::ResponseDone {
                    response_id,
                    status: string_field(response, "status").unwrap_or_default(),
                }
            }
        }
        "response.output_audio.delta" => ServerEvent::AudioDelta {
            response_id: req(&v, "response_id")?,
            item_id: req(&v, "item_id")?,
            delta: req(&v, "delta")?,
        },
        "response.output_audio.done" => ServerEvent::AudioDone {
            response_id: req(&v, "response_id")?,
            item_id: req(&v, "item_id")?,
        },
        "response.function_call_arguments.done" => ServerEvent::FunctionCall {
            response_id: req(&v, "response_id")?,
            call_id: req(&v, "call_id")?,
            name: req(&v, "name")?,
            arguments: string_field(&v, "arguments").unwrap_or_default(),
        },
        "conversation.item.truncated" => ServerEvent::Truncated {
            item_id: req(&v, "item_id")?,
            audio_end_ms: u64_field(&v, "audio_end_ms").unwrap_or(0),
        },
        "error" => {
            let e = v.get("error").unwrap_or(&Value::Null);
            ServerEvent::Error(ApiError {
                kind: str_field(e, "type")
                    .map(|s| clip(s, 64))
                    .unwrap_or_default(),
                code: str_field(e, "code").map(|s| clip(s, 64)),
                message: str_field(e, "message")
                    .map(|s| clip(s, 300))
                    .unwrap_or_default(),
                event_id: str_field(e, "event_id").map(|s| clip(s, 128)),
            })
        }
        other => ServerEvent::Other(clip(other, 80)),
    };
    Ok(ev)
}

/// `input_audio_buffer.append` with raw audio, base64-encoded straight into the frame.
pub fn append_audio(audio: &[u8]) -> String {
    const HEAD: &str = r#"{"type":"input_audio_buffer.append","audio":""#;
    let mut s = String::with_capacity(HEAD.len() + audio.len().div_ceil(3) * 4 + 2);
    s.push_str(HEAD);
    base64::Engine::encode_string(&base64::engine::general_purpose::STANDARD, audio, &mut s);
    s.push_str("\"}");
    s
}

/// `input_audio_buffer.append` with base64 audio.
pub fn append(audio_b64: &str) -> String {
    if super::json_fast::is_base64_text(audio_b64) {
        return format!(r#"{{"type":"input_audio_buffer.append","audio":"{audio_b64}"}}"#);
    }
    json!({"type": "input_audio_buffer.append", "audio": audio_b64}).to_string()
}

/// `conversation.item.truncate` for the first content part of an assistant item.
pub fn truncate(event_id: &str, item_id: &str, audio_end_ms: u64) -> String {
    json!({"type": "conversation.item.truncate", "event_id": event_id, "item_id": item_id,
           "content_index": 0, "audio_end_ms": audio_end_ms})
    .to_string()
}

/// `response.create`, optionally with `response` parameters.
pub fn response_create(event_id: &str, response: Option<Value>) -> String {
    let mut ev = json!({"type": "response.create", "event_id": event_id});
    if let (Some(r), Some(obj)) = (response, ev.as_object_mut()) {
        obj.insert("response".into(), r);
    }
    ev.to_string()
}

/// `response.cancel` (the error `response_cancel_not_active` is a benign race).
pub fn response_cancel(event_id: &str) -> String {
    json!({"type": "response.cancel", "event_id": event_id}).to_string()
}

/// `conversation.item.create` with a `function_call_output` item.
pub fn function_call_output(event_id: &str, call_id: &str, output: &str) -> String {
    json!({"type": "conversation.item.create", "event_id": event_id,
           "item": {"type": "function_call_output", "call_id": call_id, "output": output}})
    .to_string()
}

/// `conversation.item.create` with a system message (a stage direction for the model that does
/// not replace the session instructions, unlike `response.instructions`).
pub fn system_message(event_id: &str, text: &str) -> String {
    json!({"type": "conversation.item.create", "event_id": event_id,
           "item": {"type": "message", "role": "system",
                    "content": [{"type": "input_text", "text": text}]}})
    .to_string()
}

/// One replayed line of the web conversation (GA `conversation.item.create`: user lines are
/// `input_text`, assistant lines `output_text`).
pub fn history_message(event_id: &str, item: &super::config::HistoryItem) -> String {
    let (role, kind) = match item.role {
        super::config::HistoryRole::User => ("user", "input_text"),
        super::config::HistoryRole::Assistant => ("assistant", "output_text"),
    };
    json!({"type": "conversation.item.create", "event_id": event_id,
           "item": {"type": "message", "role": role,
                    "content": [{"type": kind, "text": item.text}]}})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_used_events() {
        assert_eq!(
            parse(
                r#"{"type":"response.output_audio.delta","event_id":"e","response_id":"r1","item_id":"i1","output_index":0,"content_index":0,"delta":"AAA="}"#
            ),
            Ok(ServerEvent::AudioDelta {
                response_id: "r1".into(),
                item_id: "i1".into(),
                delta: "AAA=".into()
            })
        );
        assert_eq!(
            parse(r#"{"type":"response.done","response":{"id":"r1","status":"cancelled"}}"#),
            Ok(ServerEvent::ResponseDone {
                response_id: "r1".into(),
                status: "cancelled".into()
            })
        );
        assert_eq!(
            parse(
                r#"{"type":"input_audio_buffer.speech_stopped","audio_end_ms":1200,"item_id":"i"}"#
            ),
            Ok(ServerEvent::SpeechStopped {
                audio_end_ms: Some(1200)
            })
        );
        assert_eq!(
            parse(r#"{"type":"rate_limits.updated","rate_limits":[]}"#),
            Ok(ServerEvent::Other("rate_limits.updated".into()))
        );
    }

    #[test]
    fn errors_and_fatality() {
        let ev = parse(
            r#"{"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"session_expired","message":"Your session hit the maximum duration of 60 minutes.","param":null,"event_id":null}}"#,
        );
        let Ok(ServerEvent::Error(e)) = ev else {
            panic!("not an error: {ev:?}")
        };
        assert!(e.is_fatal());
        let benign = ApiError {
            kind: "invalid_request_error".into(),
            code: Some("conversation_already_has_active_response".into()),
            ..Default::default()
        };
        assert!(!benign.is_fatal());
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        assert_eq!(parse("{"), Err(EventError::NotJson));
        assert_eq!(parse(r#"{"x":1}"#), Err(EventError::NoType));
        assert_eq!(
            parse(r#"{"type":"response.output_audio.delta","response_id":"r"}"#),
            Err(EventError::MissingField("item_id"))
        );
    }
}
