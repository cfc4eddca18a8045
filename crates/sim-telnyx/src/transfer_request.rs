//! `POST /v2/calls/{id}/actions/transfer` body validation, per the `TransferCallRequest` schema
//! of Telnyx's OpenAPI (team-telnyx/openapi `openapi/spec3.yml`, July 2026):
//!
//! * `to` is required: an E.164 number (optionally `,<DTMF>`) or a SIP URI;
//! * `from` "should be in +E164 format" and defaults to the original call's `to`;
//!   `from_display_name` at most 128 characters of letters, digits, spaces and `-_~!.+`;
//! * `timeout_secs` 5–600 (default 30), `time_limit_secs` 30–14400 (default 14400);
//! * `client_state` (for the original call) and `target_leg_client_state` (for the new leg) are
//!   base64; `audio_url` (http/https) and `media_name` "cannot be used together";
//! * enums: `answering_machine_detection`, `media_encryption` (`disabled`|`SRTP`|`DTLS`),
//!   `mute_dtmf` (`none`|`both`|`self`|`opposite`), `privacy` (`id`|`none`), `sip_region`,
//!   `sip_transport_protocol` (`UDP`|`TCP`|`TLS`), `webhook_url(s)_method` (`POST`|`GET`), the
//!   `record*` fields; `send_digits_on_answer` at most 64 of `0-9 A-D w W * #`;
//!   `preferred_codecs` from `G722, PCMU, PCMA, G729, OPUS, VP8, H264, AMR-WB`.
//!
//! What the simulator refuses beyond the shape: nothing (`from` ownership is not checked, as
//! the documented default — the original call's `to` — is the callee's number on an outbound
//! call, which the account does not own).

use crate::api_error::ErrorItem;
use crate::call_options::{
    check_codec_list, check_header_list, check_object, check_record_options, parse_routing,
};
use crate::dial_request::{parse_amd_config, DialParams, AMD_MODES};
use crate::fields::{dial_number, is_dial_target, is_e164, Fields};

const SIP_REGIONS: &[&str] = &["US", "Europe", "Canada", "Australia", "Middle East"];
const TRANSFER_CODECS: &[&str] = &[
    "G722", "PCMU", "PCMA", "G729", "OPUS", "VP8", "H264", "AMR-WB",
];

/// A valid transfer.
#[derive(Debug, Clone)]
pub struct TransferParams {
    /// The new leg, as the dial Telnyx places for it.
    pub leg: DialParams,
    /// `audio_url` or `media_name`: played to the agent when it answers, before the bridge.
    pub announce: Option<String>,
    /// `park_after_unbridge: "self"`: the original call stays up when the agent leaves.
    pub park_after_unbridge: bool,
}

/// Validates a transfer body (`client_state`, for the original call, and `command_id` are read
/// by every command alike); `original_to` is the `to` of the call being transferred (the
/// default `from`). Errors go to `f.errors`; `None` only together with an error.
pub(crate) fn parse_transfer(
    f: &mut Fields<'_>,
    original_to: &str,
    connection_id: &str,
) -> Option<TransferParams> {
    let to = match f.raw("to") {
        None => {
            f.errors.push(ErrorItem::missing("to"));
            None
        }
        Some(_) => match f.opt_str("to") {
            Some(t) if t.trim().is_empty() => {
                f.errors.push(ErrorItem::missing("to"));
                None
            }
            Some(t) if !is_dial_target(t) => {
                f.errors.push(ErrorItem::not_e164("to"));
                None
            }
            Some(t) => Some(dial_number(t).to_owned()),
            None => None,
        },
    };
    let from = f.opt_str("from").map(str::to_owned);
    if from.as_deref().is_some_and(|fr| !is_e164(fr)) {
        f.errors.push(ErrorItem::not_e164("from"));
    }
    if let Some(name) = f.opt_str_max("from_display_name", 128) {
        let ok = name
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || "-_~!.+".contains(c));
        if !ok {
            f.errors.push(ErrorItem::invalid(
                "from_display_name",
                "Only letters, numbers, spaces and -_~!.+ are allowed.",
            ));
        }
    }
    let amd = f
        .opt_enum("answering_machine_detection", AMD_MODES)
        .unwrap_or("disabled")
        .to_owned();
    parse_amd_config(f);
    let audio_url = f.opt_http_url("audio_url").map(str::to_owned);
    let media_name = f.opt_str("media_name").map(str::to_owned);
    if audio_url.is_some() && media_name.is_some() {
        f.errors.push(ErrorItem::invalid(
            "audio_url",
            "media_name and audio_url cannot be used together in one request.",
        ));
    }
    let target_client_state = f.opt_base64("target_leg_client_state").map(str::to_owned);
    check_header_list(f, "custom_headers", None);
    check_header_list(f, "sip_headers", Some(&["User-to-User"]));
    f.opt_bool("early_media");
    f.opt_enum("media_encryption", &["disabled", "SRTP", "DTLS"]);
    f.opt_enum("mute_dtmf", &["none", "both", "self", "opposite"]);
    // The schema types it as a free string; only `self` has a documented meaning.
    let park = f.opt_str("park_after_unbridge") == Some("self");
    check_codec_list(f, "preferred_codecs", TRANSFER_CODECS);
    f.opt_enum("privacy", &["id", "none"]);
    check_record_options(f);
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
    f.opt_str("sip_auth_password");
    f.opt_str("sip_auth_username");
    f.opt_enum("sip_region", SIP_REGIONS);
    f.opt_enum("sip_transport_protocol", &["UDP", "TCP", "TLS"]);
    check_object(f, "sound_modifications");
    let time_limit_secs = f
        .opt_int_in("time_limit_secs", 30, 14_400)
        .unwrap_or(14_400) as u64;
    let timeout_secs = f.opt_int_in("timeout_secs", 5, 600).unwrap_or(30) as u64;
    let routing = parse_routing(f);
    if !f.errors.is_empty() {
        return None;
    }
    let to = to?;
    Some(TransferParams {
        leg: DialParams {
            to,
            from: from.unwrap_or_else(|| original_to.to_owned()),
            connection_id: connection_id.to_owned(),
            client_state: target_client_state,
            command_id: None,
            // Decision: the transfer's `webhook_url(s)` ("for this call") route the new leg's
            // webhooks, as a dial's do for the call it places; the original call keeps its own.
            webhook_url: routing.webhook_url,
            webhook_urls: routing.webhook_urls,
            retry_policies: routing.retry_policies,
            timeout_secs,
            // The transfer's timeout always ends the leg with `timeout` (its description).
            retry_on_timeout: true,
            time_limit_secs,
            amd,
            stream: None,
        },
        announce: audio_url.or(media_name),
        park_after_unbridge: park,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn run(body: Value) -> Result<TransferParams, Vec<ErrorItem>> {
        let obj = body.as_object().cloned().unwrap_or_default();
        let mut f = Fields::new(&obj);
        parse_transfer(&mut f, "+33100000001", "conn").ok_or(f.errors)
    }

    #[test]
    fn defaults_follow_the_schema() {
        let p = run(json!({"to": "+33699999999,12w3"})).expect("valid");
        assert_eq!(p.leg.to, "+33699999999");
        assert_eq!(
            p.leg.from, "+33100000001",
            "defaults to the original call's to"
        );
        assert_eq!((p.leg.timeout_secs, p.leg.time_limit_secs), (30, 14_400));
        assert!(!p.park_after_unbridge);
    }

    #[test]
    fn collects_every_shape_error() {
        let e = run(
            json!({"from": "0612", "timeout_secs": 4, "time_limit_secs": 29,
            "audio_url": "https://x/a.wav", "media_name": "ring", "target_leg_client_state": "!!",
            "from_display_name": "Bob <bob>", "mute_dtmf": "all", "preferred_codecs": "PCMU,GSM"}),
        )
        .expect_err("invalid");
        let ptrs: Vec<_> = e.iter().filter_map(|e| e.pointer.clone()).collect();
        for p in [
            "/to",
            "/from",
            "/timeout_secs",
            "/time_limit_secs",
            "/audio_url",
            "/target_leg_client_state",
            "/from_display_name",
            "/mute_dtmf",
            "/preferred_codecs",
        ] {
            assert!(ptrs.contains(&p.to_string()), "{p} missing in {ptrs:?}");
        }
    }
}
