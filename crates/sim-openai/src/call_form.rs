//! The multipart form of `POST /v1/realtime/calls` (OpenAPI `RealtimeCallCreateRequest`:
//! `sdp` required, `session` optional, no other field; encodings `sdp: application/sdp`,
//! `session: application/json`). The `session` part is validated exactly like the `session` of
//! `POST /v1/realtime/client_secrets`.

use crate::errors::FieldError;
use crate::multipart::{self, Part};
use crate::session_config::SessionConfig;
use crate::validate as v;
use serde_json::Value;

/// A valid multipart call request.
#[derive(Debug)]
pub(crate) struct CallForm {
    pub offer: String,
    /// The validated session, with the `session` part as sent (for the recording).
    pub session: Option<(SessionConfig, Value)>,
}

fn unparsable(reason: &str) -> FieldError {
    // OpenAI answers unparsable forms with a plain invalid_request_error; the code is ours.
    FieldError::new(
        "invalid_multipart",
        format!("Could not parse the multipart/form-data body: {reason}."),
        None,
    )
}

/// Checks a part's own content type against the one the spec's `encoding` names (parameters
/// such as `charset` are allowed; a missing type is text/plain per RFC 7578, so refused).
fn check_part_type(part: &Part, expected: &str) -> Result<(), FieldError> {
    let got = part.content_type.as_deref().unwrap_or("text/plain");
    let ok = multipart::media_type(got).is_ok_and(|(mt, _)| mt == expected);
    if ok {
        return Ok(());
    }
    Err(FieldError::new(
        "unsupported_content_type",
        format!(
            "Invalid content type for '{}': expected '{expected}', got '{got}'.",
            part.name
        ),
        Some(&part.name),
    ))
}

fn utf8(part: &Part) -> Result<&str, FieldError> {
    std::str::from_utf8(&part.body).map_err(|_| {
        FieldError::new(
            "invalid_value",
            format!("Invalid '{}': the part is not UTF-8 text.", part.name),
            Some(&part.name),
        )
    })
}

/// Parses and validates the form. `content_type` is the request's `Content-Type`.
pub(crate) fn parse(content_type: &str, body: &[u8]) -> Result<CallForm, FieldError> {
    let boundary = multipart::boundary(content_type).map_err(|e| unparsable(&e))?;
    let parts = multipart::parse(body, &boundary).map_err(|e| unparsable(&e))?;
    let mut sdp: Option<&Part> = None;
    let mut session: Option<&Part> = None;
    for part in &parts {
        let slot = match part.name.as_str() {
            "sdp" => &mut sdp,
            "session" => &mut session,
            other => {
                return Err(FieldError::new(
                    "unknown_parameter",
                    format!("Unknown parameter: '{other}'."),
                    Some(other),
                ))
            }
        };
        if slot.is_some() {
            // A repeated form field reads as a list, and neither field is one.
            return Err(FieldError::new(
                "invalid_type",
                format!(
                    "Invalid type for '{}': expected {}, but got an array instead.",
                    part.name,
                    if part.name == "sdp" {
                        "a string"
                    } else {
                        "an object"
                    }
                ),
                Some(&part.name),
            ));
        }
        *slot = Some(part);
    }
    let sdp = sdp.ok_or_else(|| v::missing("sdp"))?;
    check_part_type(sdp, "application/sdp")?;
    let offer = utf8(sdp)?.to_string();
    let session = match session {
        None => None,
        Some(part) => {
            check_part_type(part, "application/json")?;
            let text = utf8(part)?;
            let json: Value = serde_json::from_str(text).map_err(|e| {
                FieldError::new(
                    "invalid_json",
                    format!("Invalid 'session': the part is not valid JSON ({e})."),
                    Some("session"),
                )
            })?;
            let cfg = SessionConfig::from_request(&json, "session")?;
            Some((cfg, json))
        }
    };
    Ok(CallForm { offer, session })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=B";

    fn body(parts: &[(&str, &str, &str)]) -> Vec<u8> {
        let mut out = String::new();
        for (name, ct, content) in parts {
            out.push_str(&format!(
                "--B\r\nContent-Disposition: form-data; name=\"{name}\"\r\nContent-Type: {ct}\r\n\r\n{content}\r\n"
            ));
        }
        out.push_str("--B--\r\n");
        out.into_bytes()
    }

    fn code(parts: &[(&str, &str, &str)]) -> (String, Option<String>) {
        let e = parse(CT, &body(parts)).expect_err("refused");
        (e.code, e.param)
    }

    #[test]
    fn sdp_alone_or_with_a_session() {
        let f = parse(CT, &body(&[("sdp", "application/sdp", "v=0")])).expect("ok");
        assert_eq!(f.offer, "v=0");
        assert!(f.session.is_none());
        let f = parse(
            CT,
            &body(&[
                ("sdp", "application/sdp", "v=0"),
                (
                    "session",
                    "application/json; charset=utf-8",
                    r#"{"type":"realtime","model":"gpt-realtime-2.1","instructions":"Bonjour"}"#,
                ),
            ]),
        )
        .expect("ok");
        let (cfg, raw) = f.session.expect("session");
        assert_eq!(cfg.model, "gpt-realtime-2.1");
        assert_eq!(cfg.instructions, "Bonjour");
        assert_eq!(raw["instructions"], "Bonjour");
    }

    #[test]
    fn refusals_name_the_field() {
        let sdp = ("sdp", "application/sdp", "v=0");
        let s = |j: &'static str| ("session", "application/json", j);
        type Case<'a> = (Vec<(&'a str, &'a str, &'a str)>, &'a str, Option<&'a str>);
        let cases: Vec<Case> = vec![
            (
                vec![s(r#"{"type":"realtime"}"#)],
                "missing_required_parameter",
                Some("sdp"),
            ),
            (
                vec![sdp, ("extra", "text/plain", "1")],
                "unknown_parameter",
                Some("extra"),
            ),
            (vec![sdp, sdp], "invalid_type", Some("sdp")),
            (
                vec![("sdp", "text/plain", "v=0")],
                "unsupported_content_type",
                Some("sdp"),
            ),
            (
                vec![sdp, ("session", "text/plain", "{}")],
                "unsupported_content_type",
                Some("session"),
            ),
            (vec![sdp, s("{not json")], "invalid_json", Some("session")),
            (vec![sdp, s("[]")], "invalid_type", Some("session")),
            (
                vec![sdp, s(r#"{"model":"gpt-realtime"}"#)],
                "missing_required_parameter",
                Some("session.type"),
            ),
            (
                vec![sdp, s(r#"{"type":"realtime","voice":"marin"}"#)],
                "unknown_parameter",
                Some("session.voice"),
            ),
            (
                vec![sdp, s(r#"{"type":"realtime","model":"gpt-live-1"}"#)],
                "invalid_model",
                Some("session.model"),
            ),
        ];
        for (parts, want, param) in cases {
            assert_eq!(
                code(&parts),
                (want.to_string(), param.map(str::to_string)),
                "{parts:?}"
            );
        }
        let e = parse("multipart/form-data", b"--B--").expect_err("no boundary");
        assert_eq!(e.code, "invalid_multipart");
        let e = parse(CT, b"garbage").expect_err("no delimiter");
        assert_eq!(e.code, "invalid_multipart");
    }
}
