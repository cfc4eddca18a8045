//! `POST /v2/calls/{id}/actions/answer` body validation, per the `AnswerRequest` schema of
//! Telnyx's OpenAPI (team-telnyx/openapi `openapi/spec3.yml`, checked at its July 2026 state):
//!
//! * every field is optional; `client_state` must be base64, `billing_group_id` a UUID;
//! * the stream fields are `stream_url`, `stream_track`, `stream_codec` and
//!   `stream_bidirectional_{mode,codec,target_legs}` with the same enums as `CallRequest`.
//!   Unlike `CallRequest` and `StartStreamingRequest`, `AnswerRequest` has **no**
//!   `stream_auth_token`, `stream_bidirectional_sampling_rate` or `custom_parameters`;
//! * `deepfake_detection` needs `enabled`, `rtp_timeout` is 5–120 and `timeout` 5–60;
//! * the recording, SIP header and webhook fields as in the other commands.
//!
//! Decision: fields the schema does not have are ignored, not refused (the schema does not say
//! `additionalProperties: false`, and Telnyx ignores unknown fields elsewhere). They are listed in
//! `AnswerParams::ignored` so a test can see that, e.g., a `stream_auth_token` given on answer
//! never reaches the WebSocket: an app that relies on it works with the simulator only if it
//! would also work with a Telnyx that ignores it.

use crate::api_error::ErrorItem;
use crate::call_options::{
    check_codec_list, check_header_list, check_object, check_record_options, check_uuid,
    parse_routing, Routing,
};
use crate::dial_request::{parse_stream_as, StreamParams, StreamSchema};
use crate::fields::Fields;
use serde_json::{Map, Value};

/// The properties of `AnswerRequest`.
const KNOWN: &[&str] = &[
    "assistant",
    "billing_group_id",
    "client_state",
    "command_id",
    "conversation_relay_config",
    "custom_headers",
    "deepfake_detection",
    "preferred_codecs",
    "record",
    "record_channels",
    "record_custom_file_name",
    "record_format",
    "record_max_length",
    "record_timeout_secs",
    "record_track",
    "record_trim",
    "send_silence_when_idle",
    "sip_headers",
    "sound_modifications",
    "stream_bidirectional_codec",
    "stream_bidirectional_mode",
    "stream_bidirectional_target_legs",
    "stream_codec",
    "stream_track",
    "stream_url",
    "transcription",
    "transcription_config",
    "webhook_retries_policies",
    "webhook_url",
    "webhook_url_method",
    "webhook_urls",
    "webhook_urls_method",
];

/// The codecs `AnswerRequest.preferred_codecs` names. The spec's enum has the single value
/// `"G722,PCMU,PCMA,G729,OPUS,VP8,H264"`; Decision: read it as "a comma-separated list of
/// these", since a one-value enum for a preference list cannot be what the service checks.
const ANSWER_CODECS: &[&str] = &["G722", "PCMU", "PCMA", "G729", "OPUS", "VP8", "H264"];

/// Stream options that make no sense without a `stream_url`.
const STREAM_OPTIONS: &[&str] = &[
    "stream_track",
    "stream_codec",
    "stream_bidirectional_mode",
    "stream_bidirectional_codec",
    "stream_bidirectional_target_legs",
];

/// A valid answer (`client_state` and `command_id` are read by every command alike).
#[derive(Debug, Clone)]
pub struct AnswerParams {
    pub stream: Option<StreamParams>,
    pub routing: Routing,
    /// Fields present in the body that `AnswerRequest` does not have (ignored), sorted.
    pub ignored: Vec<String>,
}

/// Validates an answer body; errors go to `f.errors`. `None` only together with an error.
pub(crate) fn parse_answer(obj: &Map<String, Value>, f: &mut Fields<'_>) -> Option<AnswerParams> {
    check_object(f, "assistant");
    check_uuid(f, "billing_group_id");
    check_object(f, "conversation_relay_config");
    check_header_list(f, "custom_headers", None);
    check_deepfake_detection(f);
    check_codec_list(f, "preferred_codecs", ANSWER_CODECS);
    check_record_options(f);
    f.opt_bool("send_silence_when_idle");
    check_header_list(f, "sip_headers", Some(&["User-to-User"]));
    check_object(f, "sound_modifications");
    let schema = StreamSchema {
        auth_token: false,
        sampling_rate: false,
        custom_parameters: false,
    };
    let stream = parse_stream_as(f, "stream_url", &schema);
    // Decision: stream options without `stream_url` are refused. The spec does not say what
    // happens to them; an app that sends them believes it is streaming, and silently getting no
    // stream is the worse failure for a test double to hide.
    if !f.has("stream_url") {
        if let Some(k) = STREAM_OPTIONS.iter().find(|k| f.has(k)) {
            f.errors.push(
                ErrorItem::new(
                    "10004",
                    "Missing required parameter",
                    format!("'{k}' needs 'stream_url'."),
                )
                .at("/stream_url"),
            );
        }
    }
    // Decision: `stream_bidirectional_codec` is "used only with stream_bidirectional_mode=rtp"
    // (schema `StreamBidirectionalCodec`); given with mp3 (the default) it is refused rather
    // than silently unused.
    let rtp = f.raw("stream_bidirectional_mode").and_then(Value::as_str) == Some("rtp");
    if f.has("stream_bidirectional_codec") && !rtp {
        f.errors.push(ErrorItem::invalid(
            "stream_bidirectional_codec",
            "'stream_bidirectional_codec' is used only with stream_bidirectional_mode=rtp.",
        ));
    }
    f.opt_bool("transcription");
    check_object(f, "transcription_config");
    let routing = parse_routing(f);
    let mut ignored: Vec<String> = obj
        .keys()
        .filter(|k| !KNOWN.contains(&k.as_str()))
        .cloned()
        .collect();
    ignored.sort();
    f.errors.is_empty().then_some(AnswerParams {
        stream,
        routing,
        ignored,
    })
}

/// `deepfake_detection`: `{enabled (required bool), rtp_timeout 5–120, timeout 5–60}`.
fn check_deepfake_detection(f: &mut Fields<'_>) {
    let Some(v) = f.raw("deepfake_detection") else {
        return;
    };
    let Some(obj) = v.as_object() else {
        f.errors.push(ErrorItem::invalid(
            "deepfake_detection",
            "The 'deepfake_detection' parameter must be an object.",
        ));
        return;
    };
    let mut inner = Fields::new(obj);
    if !inner.has("enabled") {
        inner.errors.push(ErrorItem::missing("enabled"));
    }
    inner.opt_bool("enabled");
    inner.opt_int_in("rtp_timeout", 5, 120);
    inner.opt_int_in("timeout", 5, 60);
    for mut e in inner.errors {
        e.pointer = e.pointer.map(|p| format!("/deepfake_detection{p}"));
        f.errors.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(body: Value) -> Result<AnswerParams, Vec<ErrorItem>> {
        let obj = body.as_object().cloned().unwrap_or_default();
        let mut f = Fields::new(&obj);
        parse_answer(&obj, &mut f).ok_or(f.errors)
    }

    #[test]
    fn accepts_the_stream_fields_of_the_schema_and_ignores_the_others() {
        let p = run(
            json!({"stream_url": "wss://x/y", "stream_track": "both_tracks",
            "stream_bidirectional_mode": "rtp", "stream_bidirectional_codec": "PCMU",
            "stream_bidirectional_target_legs": "self", "stream_auth_token": "tok",
            "client_state": "eyJhIjoxfQ==", "webhook_url": "https://app/hooks"}),
        )
        .expect("valid");
        let s = p.stream.expect("stream");
        assert_eq!(s.auth_token, None, "not an AnswerRequest field");
        assert_eq!(s.track, "both_tracks");
        assert_eq!(p.ignored, vec!["stream_auth_token".to_string()]);
        assert_eq!(p.routing.webhook_url.as_deref(), Some("https://app/hooks"));
    }

    #[test]
    fn refuses_what_the_schema_refuses() {
        let e = run(json!({"stream_url": "http://x",
            "stream_track": "left", "deepfake_detection": {"timeout": 1},
            "billing_group_id": "nope", "record_custom_file_name": "",
            "sip_headers": [{"name": "X-Foo", "value": "1"}]}))
        .expect_err("invalid");
        let ptrs: Vec<_> = e.iter().filter_map(|e| e.pointer.clone()).collect();
        for p in [
            "/stream_url",
            "/stream_track",
            "/deepfake_detection/enabled",
            "/deepfake_detection/timeout",
            "/billing_group_id",
            "/record_custom_file_name",
            "/sip_headers",
        ] {
            assert!(ptrs.contains(&p.to_string()), "{p} missing in {ptrs:?}");
        }
    }

    #[test]
    fn stream_options_need_a_url_and_a_codec_needs_rtp() {
        let e = run(json!({"stream_track": "both_tracks"})).expect_err("no url");
        assert_eq!(e[0].code, "10004");
        let e = run(json!({"stream_url": "wss://x", "stream_bidirectional_codec": "PCMU"}))
            .expect_err("mp3 mode");
        assert_eq!(e[0].pointer.as_deref(), Some("/stream_bidirectional_codec"));
    }
}
