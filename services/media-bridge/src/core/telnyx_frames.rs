//! Telnyx media-stream frames (JSON text frames over the media WebSocket).
//!
//! Inbound: `connected`, `start`, `media`, `mark`, `dtmf`, `stop`, `error` (see
//! Telnyx, "Stream call media over WebSocket"). Numbers inside are mostly strings; both spellings are accepted.
//! Outbound (bidirectional `rtp` mode): `media`, `mark`, `clear`, without `stream_id`.

use serde_json::{json, Value};

use super::json_util::{clip, i64_field, str_field, string_field, u64_field};

/// One parsed frame from Telnyx.
#[derive(Debug, Clone, PartialEq)]
pub enum TelnyxFrame {
    /// First frame on the socket.
    Connected { version: Option<String> },
    /// Stream metadata; arrives once, before media.
    Start(StreamStart),
    /// A chunk of call audio.
    Media(MediaFrame),
    /// Echo of a mark we sent: the audio queued before it has finished playing.
    Mark {
        sequence_number: Option<u64>,
        name: String,
    },
    /// A DTMF digit pressed by the far end.
    Dtmf {
        sequence_number: Option<u64>,
        digit: String,
    },
    /// The stream ended (call hung up or streaming stopped).
    Stop { sequence_number: Option<u64> },
    /// A stream error reported by Telnyx (codes 100002–100005).
    Error {
        sequence_number: Option<u64>,
        code: Option<i64>,
        title: String,
        detail: String,
    },
    /// An event name we do not know; logged and ignored.
    Unknown {
        event: String,
        sequence_number: Option<u64>,
    },
}

impl TelnyxFrame {
    /// The stream-wide sequence number, when the frame has one.
    pub fn sequence_number(&self) -> Option<u64> {
        match self {
            TelnyxFrame::Connected { .. } => None,
            TelnyxFrame::Start(s) => s.sequence_number,
            TelnyxFrame::Media(m) => m.sequence_number,
            TelnyxFrame::Mark {
                sequence_number, ..
            }
            | TelnyxFrame::Dtmf {
                sequence_number, ..
            }
            | TelnyxFrame::Stop { sequence_number }
            | TelnyxFrame::Error {
                sequence_number, ..
            }
            | TelnyxFrame::Unknown {
                sequence_number, ..
            } => *sequence_number,
        }
    }
}

/// The `start` frame: who the stream belongs to and what it carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamStart {
    pub sequence_number: Option<u64>,
    /// Top level in the frame (not inside `start`).
    pub stream_id: Option<String>,
    pub call_control_id: Option<String>,
    pub call_session_id: Option<String>,
    /// Base64 as set on the dial; Callway puts only an opaque id there.
    pub client_state: Option<String>,
    /// `start.custom_parameters`, as sent.
    pub custom_parameters: Option<Value>,
    pub media_format: Option<MediaFormat>,
}

/// `start.media_format`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: Option<u64>,
    pub channels: Option<u64>,
}

impl MediaFormat {
    /// True for G.711 mu-law, 8 kHz, mono — the only format the fast path passes through.
    /// Missing `sample_rate`/`channels` are taken as the PCMU defaults; `audio/x-mulaw` is the
    /// older spelling of the encoding.
    pub fn is_pcmu_8k_mono(&self) -> bool {
        let enc = self.encoding.trim();
        let pcmu = enc.eq_ignore_ascii_case("PCMU") || enc.eq_ignore_ascii_case("audio/x-mulaw");
        pcmu && self.sample_rate.unwrap_or(8000) == 8000 && self.channels.unwrap_or(1) == 1
    }
}

/// Which side of the call a media frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The far end (the callee on an outbound call). Missing `track` means inbound.
    Inbound,
    /// What Telnyx plays to the far end (our own agent audio with `both_tracks`).
    Outbound,
}

/// A `media` frame. `payload` is base64 of raw codec bytes (no RTP header).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaFrame {
    pub sequence_number: Option<u64>,
    pub track: Track,
    pub chunk: Option<u64>,
    pub timestamp: Option<u64>,
    pub payload: String,
}

/// Why a text frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Not JSON at all.
    NotJson,
    /// JSON, but not an object with a string `event`.
    NoEvent,
    /// A known event with a required field missing or of the wrong type.
    MissingField(&'static str),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::NotJson => write!(f, "frame is not JSON"),
            FrameError::NoEvent => write!(f, "frame has no string `event`"),
            FrameError::MissingField(field) => write!(f, "frame lacks `{field}`"),
        }
    }
}

/// Parses one Telnyx text frame: media frames (most of the traffic) without a `Value` tree when
/// they can be read exactly that way, everything else by [`parse_general`]. Same result.
pub fn parse(text: &str) -> Result<TelnyxFrame, FrameError> {
    if text.contains("\"media\"") {
        if let Ok(m) = serde_json::from_str::<super::json_fast::TelnyxMedia>(text) {
            if m.event == "media" {
                let track = match m.media.track.and_then(|t| t.0) {
                    Some("outbound") => Track::Outbound,
                    _ => Track::Inbound,
                };
                return Ok(TelnyxFrame::Media(MediaFrame {
                    sequence_number: m.sequence_number.0,
                    track,
                    chunk: m.media.chunk.0,
                    timestamp: m.media.timestamp.0,
                    payload: m.media.payload.to_owned(),
                }));
            }
        }
    }
    parse_general(text)
}

/// Parses one Telnyx text frame through a `serde_json::Value`.
pub fn parse_general(text: &str) -> Result<TelnyxFrame, FrameError> {
    let v: Value = serde_json::from_str(text).map_err(|_| FrameError::NotJson)?;
    let event = str_field(&v, "event").ok_or(FrameError::NoEvent)?;
    let seq = u64_field(&v, "sequence_number");
    let frame = match event {
        "connected" => TelnyxFrame::Connected {
            version: string_field(&v, "version"),
        },
        "start" => {
            let start = v.get("start").unwrap_or(&Value::Null);
            let media_format = start.get("media_format").and_then(|mf| {
                Some(MediaFormat {
                    encoding: string_field(mf, "encoding")?,
                    sample_rate: u64_field(mf, "sample_rate"),
                    channels: u64_field(mf, "channels"),
                })
            });
            TelnyxFrame::Start(StreamStart {
                sequence_number: seq,
                stream_id: string_field(&v, "stream_id"),
                call_control_id: string_field(start, "call_control_id"),
                call_session_id: string_field(start, "call_session_id"),
                client_state: string_field(start, "client_state"),
                custom_parameters: start.get("custom_parameters").cloned(),
                media_format,
            })
        }
        "media" => {
            let media = v.get("media").ok_or(FrameError::MissingField("media"))?;
            let payload =
                string_field(media, "payload").ok_or(FrameError::MissingField("media.payload"))?;
            let track = match str_field(media, "track") {
                Some("outbound") => Track::Outbound,
                _ => Track::Inbound,
            };
            TelnyxFrame::Media(MediaFrame {
                sequence_number: seq,
                track,
                chunk: u64_field(media, "chunk"),
                timestamp: u64_field(media, "timestamp"),
                payload,
            })
        }
        "mark" => TelnyxFrame::Mark {
            sequence_number: seq,
            name: v
                .get("mark")
                .and_then(|m| string_field(m, "name"))
                .ok_or(FrameError::MissingField("mark.name"))?,
        },
        "dtmf" => TelnyxFrame::Dtmf {
            sequence_number: seq,
            digit: v
                .get("dtmf")
                .and_then(|d| string_field(d, "digit"))
                .ok_or(FrameError::MissingField("dtmf.digit"))?,
        },
        "stop" => TelnyxFrame::Stop {
            sequence_number: seq,
        },
        "error" => {
            // Current docs: key `payload`, integer code. Older SDK docs: key `error`, string code.
            let body = v
                .get("payload")
                .filter(|p| p.is_object())
                .or_else(|| v.get("error"))
                .unwrap_or(&Value::Null);
            TelnyxFrame::Error {
                sequence_number: seq,
                code: i64_field(body, "code"),
                title: str_field(body, "title")
                    .map(|s| clip(s, 80))
                    .unwrap_or_default(),
                detail: str_field(body, "detail")
                    .map(|s| clip(s, 200))
                    .unwrap_or_default(),
            }
        }
        other => TelnyxFrame::Unknown {
            event: clip(other, 64),
            sequence_number: seq,
        },
    };
    Ok(frame)
}

/// `{"event":"media","media":{"payload":…}}` — `payload_b64` is base64 of raw PCMU bytes.
pub fn media(payload_b64: &str) -> String {
    if super::json_fast::is_base64_text(payload_b64) {
        return format!(r#"{{"event":"media","media":{{"payload":"{payload_b64}"}}}}"#);
    }
    json!({"event": "media", "media": {"payload": payload_b64}}).to_string()
}

/// A `media` frame with raw PCMU, base64-encoded straight into the frame.
pub fn media_audio(audio: &[u8]) -> String {
    const HEAD: &str = r#"{"event":"media","media":{"payload":""#;
    let mut s = String::with_capacity(HEAD.len() + audio.len().div_ceil(3) * 4 + 3);
    s.push_str(HEAD);
    base64::Engine::encode_string(&base64::engine::general_purpose::STANDARD, audio, &mut s);
    s.push_str("\"}}");
    s
}

/// `{"event":"mark","mark":{"name":…}}`.
pub fn mark(name: &str) -> String {
    json!({"event": "mark", "mark": {"name": name}}).to_string()
}

/// `{"event":"clear"}`: stop playback and drop Telnyx's queue (queued marks are echoed).
pub fn clear() -> String {
    r#"{"event":"clear"}"#.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_start_frame() {
        let text = r#"{"event":"start","sequence_number":"1","stream_id":"32DE0DEA-53CB-4B21-89A4-9E1819C043BC",
 "start":{"user_id":"3E6F995F-85F7-4705-9741-53B116D28237",
          "call_control_id":"v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ",
          "call_session_id":"ff55a038-6f5d-11ef-9692-02420aeffb1f",
          "from":"+13122010094","to":"+13122123456","tags":["TAG1"],
          "client_state":"aGF2ZSBhIG5pY2UgZGF5ID1d","custom_parameters":{"customer_id":"customer_123"},
          "media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}}"#;
        let TelnyxFrame::Start(s) = parse(text).expect("parses") else {
            panic!("not a start frame")
        };
        assert_eq!(s.sequence_number, Some(1));
        assert_eq!(
            s.stream_id.as_deref(),
            Some("32DE0DEA-53CB-4B21-89A4-9E1819C043BC")
        );
        assert_eq!(
            s.call_control_id.as_deref(),
            Some("v2:T02llQxIyaRkhfRKxgAP8nY511EhFLizdvdUKJiSw8d6A9BborherQ")
        );
        assert!(s.media_format.expect("format").is_pcmu_8k_mono());
    }

    #[test]
    fn parses_media_with_string_counters() {
        let text = r#"{"event":"media","sequence_number":"4","stream_id":"x",
            "media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"/w=="}}"#;
        assert_eq!(
            parse(text),
            Ok(TelnyxFrame::Media(MediaFrame {
                sequence_number: Some(4),
                track: Track::Inbound,
                chunk: Some(2),
                timestamp: Some(5),
                payload: "/w==".into()
            }))
        );
    }

    #[test]
    fn parses_both_error_shapes() {
        let new = r#"{"event":"error","stream_id":"x","payload":{"code":100003,"title":"malformed_frame","detail":"d"}}"#;
        let old = r#"{"event":"error","sequence_number":"6","stream_id":"x","error":{"title":"rate_limit_reached","code":"100005","detail":"Too many requests"}}"#;
        assert!(
            matches!(parse(new), Ok(TelnyxFrame::Error { code: Some(100003), ref title, .. }) if title == "malformed_frame")
        );
        assert!(matches!(
            parse(old),
            Ok(TelnyxFrame::Error {
                code: Some(100005),
                sequence_number: Some(6),
                ..
            })
        ));
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        assert_eq!(parse("not json"), Err(FrameError::NotJson));
        assert_eq!(parse("[1,2]"), Err(FrameError::NoEvent));
        assert_eq!(parse(r#"{"event":7}"#), Err(FrameError::NoEvent));
        assert_eq!(
            parse(r#"{"event":"media","media":{}}"#),
            Err(FrameError::MissingField("media.payload"))
        );
        assert!(matches!(
            parse(r#"{"event":"wobble","sequence_number":9}"#),
            Ok(TelnyxFrame::Unknown {
                sequence_number: Some(9),
                ..
            })
        ));
    }

    #[test]
    fn media_format_checks() {
        let f = |e: &str, r, c| MediaFormat {
            encoding: e.into(),
            sample_rate: r,
            channels: c,
        };
        assert!(f("audio/x-mulaw", Some(8000), Some(1)).is_pcmu_8k_mono());
        assert!(f("pcmu", None, None).is_pcmu_8k_mono());
        assert!(!f("PCMA", Some(8000), Some(1)).is_pcmu_8k_mono());
        assert!(!f("PCMU", Some(16000), Some(1)).is_pcmu_8k_mono());
        assert!(!f("L16", Some(16000), Some(1)).is_pcmu_8k_mono());
    }

    #[test]
    fn outbound_frames_have_the_documented_shape() {
        let m: Value = serde_json::from_str(&media("AAAA")).expect("json");
        assert_eq!(m, json!({"event":"media","media":{"payload":"AAAA"}}));
        let k: Value = serde_json::from_str(&mark("cw-1")).expect("json");
        assert_eq!(k, json!({"event":"mark","mark":{"name":"cw-1"}}));
        assert_eq!(clear(), r#"{"event":"clear"}"#);
    }
}
