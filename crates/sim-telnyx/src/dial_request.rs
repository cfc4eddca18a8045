//! `POST /v2/calls` body validation (schema `CallRequest`) into the parameters the simulator uses.

use crate::api_error::{ApiError, ErrorItem};
use crate::fields::{dial_number, is_dial_target, is_e164, Fields};
use serde_json::{Map, Value};
use std::collections::HashMap;

pub(crate) const AMD_MODES: &[&str] = &[
    "premium",
    "detect",
    "detect_beep",
    "detect_words",
    "greeting_end",
    "disabled",
];
pub(crate) const TRACKS: &[&str] = &["inbound_track", "outbound_track", "both_tracks"];
pub(crate) const STREAM_CODECS: &[&str] =
    &["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16", "default"];
pub(crate) const BIDI_MODES: &[&str] = &["mp3", "rtp"];
pub(crate) const BIDI_CODECS: &[&str] = &["PCMU", "PCMA", "G722", "OPUS", "AMR-WB", "L16"];
pub(crate) const BIDI_RATES: &[i64] = &[8000, 16000, 22050, 24000, 48000];
pub(crate) const TARGET_LEGS: &[&str] = &["both", "self", "opposite"];

/// How the stream sends audio back into the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BidiMode {
    Mp3,
    Rtp,
}

/// `stream_bidirectional_target_legs`: which legs hear the audio the app sends back.
/// `self` and `both` reach the party of the leg the stream is on; `opposite` (the spec's
/// default) names the other leg of a bridge: a lone leg has none, so nobody hears the app, and
/// once a transfer bridges the call the agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetLegs {
    Both,
    SelfLeg,
    Opposite,
}

impl TargetLegs {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetLegs::Both => "both",
            TargetLegs::SelfLeg => "self",
            TargetLegs::Opposite => "opposite",
        }
    }

    /// Whether the callee (the leg the stream is attached to) hears the app's audio.
    pub fn reaches_callee(self) -> bool {
        matches!(self, TargetLegs::Both | TargetLegs::SelfLeg)
    }
}

/// Media stream parameters from a dial or `streaming_start`.
#[derive(Debug, Clone)]
pub struct StreamParams {
    pub url: String,
    pub track: String,
    pub bidi_mode: BidiMode,
    pub bidi_codec: String,
    pub bidi_rate: u32,
    pub target_legs: TargetLegs,
    pub auth_token: Option<String>,
    pub custom_parameters: Vec<(String, String)>,
}

/// A validated dial.
#[derive(Debug, Clone)]
pub struct DialParams {
    pub to: String,
    pub from: String,
    pub connection_id: String,
    pub client_state: Option<String>,
    pub command_id: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_urls: HashMap<String, String>,
    pub retry_policies: HashMap<String, Vec<u64>>,
    pub timeout_secs: u64,
    pub retry_on_timeout: bool,
    pub time_limit_secs: u64,
    pub amd: String,
    pub stream: Option<StreamParams>,
}

impl DialParams {
    /// The stand-in for an inbound call: it was not dialled, its options come with the answer.
    pub fn inbound(to: &str, from: &str, connection_id: &str) -> DialParams {
        DialParams {
            to: to.to_owned(),
            from: from.to_owned(),
            connection_id: connection_id.to_owned(),
            client_state: None,
            command_id: None,
            webhook_url: None,
            webhook_urls: HashMap::new(),
            retry_policies: HashMap::new(),
            timeout_secs: 30,
            retry_on_timeout: true,
            time_limit_secs: 14_400,
            amd: "disabled".to_owned(),
            stream: None,
        }
    }
}

/// Context the validation needs from the account.
pub(crate) struct Account<'a> {
    pub connection_id: &'a str,
    pub from_numbers: &'a [String],
}

/// Validates a dial body. Shape errors are all reported together (422); account checks
/// (`connection_id`, `from` ownership) follow once the shape is right.
pub(crate) fn parse_dial(
    obj: &Map<String, Value>,
    account: &Account<'_>,
) -> Result<DialParams, ApiError> {
    let mut f = Fields::new(obj);
    let connection_id = f.req_str("connection_id").map(str::to_owned);
    let to = parse_to(&mut f);
    let from = f.req_str("from").map(str::to_owned);
    if let Some(fr) = &from {
        if !is_e164(fr) {
            f.errors.push(ErrorItem::not_e164("from"));
        }
    }
    f.opt_str_max("from_display_name", 128);
    let client_state = f.opt_base64("client_state").map(str::to_owned);
    let command_id = f.opt_str("command_id").map(str::to_owned);
    let webhook_url = f.opt_http_url("webhook_url").map(str::to_owned);
    f.opt_enum("webhook_url_method", &["POST", "GET"]);
    let webhook_urls = parse_webhook_urls(&mut f);
    let retry_policies = parse_retry_policies(&mut f);
    let timeout_secs = f.opt_int_in("timeout_secs", 5, 600).unwrap_or(30) as u64;
    let retry_on_timeout = f.opt_bool("retry_on_timeout").unwrap_or(true);
    let time_limit_secs = f
        .opt_int_in("time_limit_secs", 30, 14_400)
        .unwrap_or(14_400) as u64;
    let amd = f
        .opt_enum("answering_machine_detection", AMD_MODES)
        .unwrap_or("disabled")
        .to_owned();
    parse_amd_config(&mut f);
    let stream = parse_stream(&mut f, "stream_url");
    f.opt_bool("stream_establish_before_call_originate");
    f.opt_bool("send_silence_when_idle");
    f.opt_str("preferred_codecs");
    if let Some(d) = f.opt_str_max("send_digits_on_answer", 64) {
        if !d
            .bytes()
            .all(|b| b.is_ascii_digit() || b"ABCD*#wW".contains(&b))
        {
            f.errors.push(ErrorItem::invalid(
                "send_digits_on_answer",
                "Only 0-9, A-D, *, #, w and W are allowed.",
            ));
        }
    }
    if !f.errors.is_empty() {
        return Err(ApiError::unprocessable(f.errors));
    }
    let (Some(connection_id), Some(to), Some(from)) = (connection_id, to, from) else {
        return Err(ApiError::unprocessable(vec![ErrorItem::missing("to")]));
    };
    if connection_id != account.connection_id {
        return Err(ApiError::unprocessable(vec![ErrorItem::new(
            "10015",
            "Invalid value for connection_id",
            "Only Call Control Apps with valid webhook URL are accepted.",
        )
        .at("/connection_id")]));
    }
    if !account.from_numbers.iter().any(|n| n == &from) {
        return Err(ApiError::one(
            403,
            ErrorItem::new(
                "10010",
                "Forbidden",
                format!("The caller ID {from} is not a number of this account or is not allowed by the connection's outbound voice profile."),
            )
            .at("/from"),
        ));
    }
    Ok(DialParams {
        to,
        from,
        connection_id,
        client_state,
        command_id,
        webhook_url,
        webhook_urls,
        retry_policies,
        timeout_secs,
        retry_on_timeout,
        time_limit_secs,
        amd,
        stream,
    })
}

/// `to`: a string or a non-empty array of strings (the first is the one the simulator rings).
fn parse_to(f: &mut Fields<'_>) -> Option<String> {
    let Some(v) = f.raw("to") else {
        f.errors.push(ErrorItem::missing("to"));
        return None;
    };
    let targets: Vec<&str> = match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) if !items.is_empty() => {
            let strs: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if strs.len() != items.len() {
                f.errors.push(ErrorItem::invalid(
                    "to",
                    "Every 'to' entry must be a string.",
                ));
                return None;
            }
            strs
        }
        _ => {
            f.errors.push(ErrorItem::invalid(
                "to",
                "The 'to' parameter must be a string or an array of strings.",
            ));
            return None;
        }
    };
    if targets.iter().any(|t| t.trim().is_empty()) {
        f.errors.push(ErrorItem::missing("to"));
        return None;
    }
    if !targets.iter().all(|t| is_dial_target(t)) {
        f.errors.push(ErrorItem::not_e164("to"));
        return None;
    }
    targets.first().map(|t| dial_number(t).to_owned())
}

pub(crate) fn parse_webhook_urls(f: &mut Fields<'_>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let Some(v) = f.raw("webhook_urls") else {
        return out;
    };
    let Some(map) = v.as_object() else {
        f.errors.push(ErrorItem::invalid(
            "webhook_urls",
            "Must be an object mapping event types to URLs.",
        ));
        return out;
    };
    for (event, url) in map {
        match url.as_str() {
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                out.insert(event.clone(), u.to_owned());
            }
            _ => f.errors.push(ErrorItem::invalid(
                "webhook_urls",
                format!("Invalid URL for event '{event}'."),
            )),
        }
    }
    out
}

/// `webhook_retries_policies`: `{event: {retries_ms: [..]}}`, at most 5 retries, total ≤ 60 000 ms.
pub(crate) fn parse_retry_policies(f: &mut Fields<'_>) -> HashMap<String, Vec<u64>> {
    let mut out = HashMap::new();
    let Some(v) = f.raw("webhook_retries_policies") else {
        return out;
    };
    let Some(map) = v.as_object() else {
        f.errors.push(ErrorItem::invalid(
            "webhook_retries_policies",
            "Must be an object.",
        ));
        return out;
    };
    for (event, policy) in map {
        let list = policy.get("retries_ms").and_then(Value::as_array);
        let ms: Option<Vec<u64>> = list.map(|l| l.iter().filter_map(Value::as_u64).collect());
        match (list, ms) {
            (Some(l), Some(ms)) if ms.len() == l.len() && ms.len() <= 5 && ms.iter().sum::<u64>() <= 60_000 => {
                out.insert(event.clone(), ms);
            }
            _ => f.errors.push(ErrorItem::out_of_range(
                "webhook_retries_policies",
                format!("retries_ms for '{event}' must be at most 5 non-negative integers totalling at most 60000."),
            )),
        }
    }
    out
}

pub(crate) fn parse_amd_config(f: &mut Fields<'_>) {
    let Some(v) = f.raw("answering_machine_detection_config") else {
        return;
    };
    let Some(cfg) = v.as_object() else {
        f.errors.push(ErrorItem::invalid(
            "answering_machine_detection_config",
            "Must be an object.",
        ));
        return;
    };
    for (k, val) in cfg {
        if val.as_u64().is_none() {
            f.errors.push(ErrorItem::invalid(
                "answering_machine_detection_config",
                format!("'{k}' must be a non-negative integer."),
            ));
        }
    }
}

/// Which stream fields a request schema has. `AnswerRequest` lacks `stream_auth_token`,
/// `stream_bidirectional_sampling_rate` and `custom_parameters` (spec3.yml, July 2026).
pub(crate) struct StreamSchema {
    pub auth_token: bool,
    pub sampling_rate: bool,
    pub custom_parameters: bool,
}

/// Stream fields shared by Dial and `streaming_start`. `url_key` is `stream_url`.
pub(crate) fn parse_stream(f: &mut Fields<'_>, url_key: &str) -> Option<StreamParams> {
    let all = StreamSchema {
        auth_token: true,
        sampling_rate: true,
        custom_parameters: true,
    };
    parse_stream_as(f, url_key, &all)
}

/// Stream fields of a schema; fields the schema lacks are neither read nor used.
pub(crate) fn parse_stream_as(
    f: &mut Fields<'_>,
    url_key: &str,
    schema: &StreamSchema,
) -> Option<StreamParams> {
    let url = f.opt_ws_url(url_key).map(str::to_owned);
    let track = f
        .opt_enum("stream_track", TRACKS)
        .unwrap_or("inbound_track")
        .to_owned();
    // The simulated call's codec is PCMU, and it is what `start.media_format` reports whatever
    // `stream_codec` asks (Telnyx falls back to the call's codec when it cannot transcode).
    f.opt_enum("stream_codec", STREAM_CODECS);
    let bidi_mode = match f.opt_enum("stream_bidirectional_mode", BIDI_MODES) {
        Some("rtp") => BidiMode::Rtp,
        _ => BidiMode::Mp3,
    };
    let bidi_codec = f
        .opt_enum("stream_bidirectional_codec", BIDI_CODECS)
        .unwrap_or("PCMU")
        .to_owned();
    let bidi_rate = if schema.sampling_rate {
        f.opt_int_one_of("stream_bidirectional_sampling_rate", BIDI_RATES)
            .unwrap_or(8000) as u32
    } else {
        8000
    };
    let target_legs = match f.opt_enum("stream_bidirectional_target_legs", TARGET_LEGS) {
        Some("both") => TargetLegs::Both,
        Some("self") => TargetLegs::SelfLeg,
        _ => TargetLegs::Opposite,
    };
    let auth_token = if schema.auth_token {
        f.opt_str_max("stream_auth_token", 4000).map(str::to_owned)
    } else {
        None
    };
    let custom_parameters = if schema.custom_parameters {
        parse_custom_parameters(f)
    } else {
        Vec::new()
    };
    url.map(|url| StreamParams {
        url,
        track,
        bidi_mode,
        bidi_codec,
        bidi_rate,
        target_legs,
        auth_token,
        custom_parameters,
    })
}

fn parse_custom_parameters(f: &mut Fields<'_>) -> Vec<(String, String)> {
    let Some(v) = f.raw("custom_parameters") else {
        return Vec::new();
    };
    let Some(list) = v.as_array() else {
        f.errors.push(ErrorItem::invalid(
            "custom_parameters",
            "Must be an array of {name, value} objects.",
        ));
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in list {
        match (
            item.get("name").and_then(Value::as_str),
            item.get("value").and_then(Value::as_str),
        ) {
            (Some(n), Some(v)) => out.push((n.to_owned(), v.to_owned())),
            _ => {
                f.errors.push(ErrorItem::invalid(
                    "custom_parameters",
                    "Each entry needs string 'name' and 'value'.",
                ));
                return Vec::new();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn account() -> (String, Vec<String>) {
        ("conn-1".into(), vec!["+33100000000".into()])
    }

    fn run(body: Value) -> Result<DialParams, ApiError> {
        let (c, n) = account();
        let obj = body.as_object().cloned().unwrap_or_default();
        parse_dial(
            &obj,
            &Account {
                connection_id: &c,
                from_numbers: &n,
            },
        )
    }

    #[test]
    fn collects_every_shape_error() {
        let e = run(
            json!({"to": "0612", "client_state": "%%%", "timeout_secs": 2,
                            "answering_machine_detection": "super", "stream_url": "http://x"}),
        )
        .unwrap_err();
        assert_eq!(e.status, 422);
        let codes = e.codes();
        for c in ["10004", "10016", "10015", "10033", "10032"] {
            assert!(codes.contains(&c.to_string()), "{c} missing in {codes:?}");
        }
    }

    #[test]
    fn accepts_the_reference_example_shape() {
        let p = run(
            json!({"connection_id": "conn-1", "to": "+33612345678", "from": "+33100000000",
            "client_state": "eyJjYWxsX2lkIjoiYWJjIn0=", "answering_machine_detection": "premium",
            "stream_url": "ws://127.0.0.1:1/s", "stream_bidirectional_mode": "rtp",
            "stream_bidirectional_codec": "PCMU", "stream_auth_token": "tok"}),
        )
        .unwrap();
        let s = p.stream.unwrap();
        assert_eq!(s.bidi_mode, BidiMode::Rtp);
        assert_eq!(s.target_legs, TargetLegs::Opposite, "the spec's default");
        assert_eq!(s.auth_token.as_deref(), Some("tok"));
        assert_eq!(p.timeout_secs, 30);
    }
}
