//! Media stream frames: the JSON text frames Telnyx sends, and the parser for what the app sends
//! (`media`, `mark`, `clear`), with the `error` frames Telnyx answers bad input with.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

/// Stream error codes from the media streaming guide.
pub const UNKNOWN_ERROR: u32 = 100_002;
pub const MALFORMED_FRAME: u32 = 100_003;
pub const INVALID_MEDIA: u32 = 100_004;
pub const RATE_LIMIT_REACHED: u32 = 100_005;

/// An error to report to the app with an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub code: u32,
    pub title: &'static str,
    pub detail: String,
}

impl StreamError {
    pub fn malformed(detail: impl Into<String>) -> Self {
        StreamError {
            code: MALFORMED_FRAME,
            title: "malformed_frame",
            detail: detail.into(),
        }
    }
    pub fn invalid_media(detail: impl Into<String>) -> Self {
        StreamError {
            code: INVALID_MEDIA,
            title: "invalid_media",
            detail: detail.into(),
        }
    }
    pub fn rate_limited() -> Self {
        StreamError {
            code: RATE_LIMIT_REACHED,
            title: "rate_limit_reached",
            detail: "Too many requests".into(),
        }
    }
}

/// A valid frame from the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppFrame {
    Media(Vec<u8>),
    Mark(String),
    Clear,
}

/// Parses one text frame from the app. `max_payload` bounds a `media` payload (30 s of audio).
pub fn parse_app_frame(text: &str, max_payload: usize) -> Result<AppFrame, StreamError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|_| StreamError::malformed("Received frame was not formed correctly"))?;
    let event = v
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| StreamError::malformed("Received frame has no 'event'"))?;
    match event {
        "media" => {
            let payload = v
                .get("media")
                .and_then(|m| m.get("payload"))
                .and_then(Value::as_str)
                .ok_or_else(|| StreamError::malformed("'media' frame without 'media.payload'"))?;
            // 4 base64 chars carry 3 bytes: refuse an oversize payload before decoding it.
            if payload.len() / 4 * 3 > max_payload + 3 {
                return Err(StreamError::malformed(
                    "Media payload longer than 30 seconds",
                ));
            }
            let bytes = STANDARD
                .decode(payload)
                .map_err(|_| StreamError::invalid_media("Media payload is not valid base64"))?;
            if bytes.is_empty() {
                return Err(StreamError::invalid_media("Media payload is empty"));
            }
            if bytes.len() > max_payload {
                return Err(StreamError::malformed(
                    "Media payload longer than 30 seconds",
                ));
            }
            Ok(AppFrame::Media(bytes))
        }
        "mark" => v
            .get("mark")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(|n| AppFrame::Mark(n.to_owned()))
            .ok_or_else(|| StreamError::malformed("'mark' frame without 'mark.name'")),
        "clear" => Ok(AppFrame::Clear),
        other => Err(StreamError::malformed(format!(
            "Unsupported event '{other}'"
        ))),
    }
}

/// `{"event":"connected","version":"1.0.0"}`, echoing the auth token when one was configured
/// (AsyncAPI: `connected.x-telnyx-streaming-auth-token`; the nesting is not confirmed).
pub fn connected(auth_token: Option<&str>) -> String {
    let mut v = json!({"event": "connected", "version": "1.0.0"});
    if let Some(t) = auth_token {
        v["connected"] = json!({ "x-telnyx-streaming-auth-token": t });
    }
    v.to_string()
}

/// Fields of the `start` frame.
pub struct StartInfo<'a> {
    pub stream_id: &'a str,
    pub user_id: &'a str,
    pub call_control_id: &'a str,
    pub call_session_id: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    pub client_state: Option<&'a str>,
    pub custom_parameters: &'a [(String, String)],
    pub encoding: &'a str,
}

pub fn start(seq: u64, s: &StartInfo<'_>) -> String {
    let custom: serde_json::Map<String, Value> = s
        .custom_parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "event": "start",
        "sequence_number": seq.to_string(),
        "stream_id": s.stream_id,
        "start": {
            "user_id": s.user_id,
            "call_control_id": s.call_control_id,
            "call_session_id": s.call_session_id,
            "from": s.from,
            "to": s.to,
            "tags": [],
            "client_state": s.client_state,
            "custom_parameters": custom,
            "media_format": {"encoding": s.encoding, "sample_rate": 8000, "channels": 1},
        }
    })
    .to_string()
}

/// A `media` frame; counters are strings as Telnyx sends them.
pub fn media(
    seq: u64,
    stream_id: &str,
    track: &str,
    chunk: u64,
    timestamp_ms: u64,
    payload: &[u8],
) -> String {
    json!({
        "event": "media",
        "sequence_number": seq.to_string(),
        "stream_id": stream_id,
        "media": {
            "track": track,
            "chunk": chunk.to_string(),
            "timestamp": timestamp_ms.to_string(),
            "payload": STANDARD.encode(payload),
        }
    })
    .to_string()
}

pub fn mark(seq: u64, stream_id: &str, name: &str) -> String {
    json!({"event": "mark", "sequence_number": seq.to_string(), "stream_id": stream_id, "mark": {"name": name}})
        .to_string()
}

pub fn stop(seq: u64, stream_id: &str, user_id: &str, call_control_id: &str) -> String {
    json!({"event": "stop", "sequence_number": seq.to_string(), "stream_id": stream_id,
           "stop": {"user_id": user_id, "call_control_id": call_control_id}})
    .to_string()
}

/// The current guide's shape: key `payload`, integer `code`.
pub fn error(stream_id: &str, e: &StreamError) -> String {
    json!({"event": "error", "stream_id": stream_id,
           "payload": {"code": e.code, "title": e.title, "detail": e.detail}})
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_app_frames() {
        let m = format!(
            r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
            STANDARD.encode([0xFFu8; 160])
        );
        assert_eq!(
            parse_app_frame(&m, 240_000),
            Ok(AppFrame::Media(vec![0xFF; 160]))
        );
        assert_eq!(
            parse_app_frame(r#"{"event":"mark","mark":{"name":"x"}}"#, 1),
            Ok(AppFrame::Mark("x".into()))
        );
        assert_eq!(
            parse_app_frame(r#"{"event":"clear"}"#, 1),
            Ok(AppFrame::Clear)
        );
    }

    #[test]
    fn refuses_bad_frames_with_the_documented_codes() {
        let code = |t: &str| parse_app_frame(t, 240_000).unwrap_err().code;
        assert_eq!(code("not json"), MALFORMED_FRAME);
        assert_eq!(code(r#"{"event":"dance"}"#), MALFORMED_FRAME);
        assert_eq!(code(r#"{"media":{"payload":"AAAA"}}"#), MALFORMED_FRAME);
        assert_eq!(code(r#"{"event":"media","media":{}}"#), MALFORMED_FRAME);
        assert_eq!(
            code(r#"{"event":"media","media":{"payload":"!!not base64!!"}}"#),
            INVALID_MEDIA
        );
        assert_eq!(code(r#"{"event":"mark","mark":{}}"#), MALFORMED_FRAME);
        let big = format!(
            r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
            STANDARD.encode(vec![0u8; 400])
        );
        assert_eq!(
            parse_app_frame(&big, 320).unwrap_err().code,
            MALFORMED_FRAME
        );
    }

    #[test]
    fn counters_are_strings() {
        let v: Value =
            serde_json::from_str(&media(4, "S", "inbound", 2, 20, &[0xFF; 160])).unwrap();
        assert_eq!(v["sequence_number"], "4");
        assert_eq!(v["media"]["chunk"], "2");
        assert_eq!(v["media"]["timestamp"], "20");
        assert_eq!(
            STANDARD
                .decode(v["media"]["payload"].as_str().unwrap())
                .unwrap()
                .len(),
            160
        );
    }
}
