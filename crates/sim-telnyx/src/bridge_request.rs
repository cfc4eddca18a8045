//! `POST /v2/calls/{id}/actions/bridge` body validation, per the `BridgeRequest` schema of
//! Telnyx's OpenAPI (team-telnyx/openapi `openapi/spec3.yml`; its generated SDKs
//! `telnyx-python` `types/calls/action_bridge_params.py` and `telnyx-ruby`
//! `models/calls/action_bridge_params.rbi` mirror it field by field):
//!
//! * `call_control_id` (string) is required: "The Call Control ID of the call you want to bridge
//!   with, can't be used together with queue parameter or video_room_id parameter";
//! * `client_state` (base64) and `command_id` are read by every command alike;
//! * `park_after_unbridge` (string): "If supplied with the value `self`, the current leg will be
//!   parked after unbridge. If not set, the default behavior is to hang up the leg";
//! * `hold_after_unbridge` (boolean): "the current leg will be put on hold after unbridge
//!   instead of being hung up"; `prevent_double_bridge` (boolean): "prevents bridging if the
//!   target call is already bridged to another call. Disabled by default";
//! * `play_ringtone` (boolean) and `ringtone` (country enum); `mute_dtmf`
//!   (`none`|`both`|`self`|`opposite`); `record` (`record-from-answer`) and its companions;
//! * `queue` (string) and `video_room_id` (uuid) are the two alternatives to `call_control_id`;
//!   `video_room_context` "can be used only with video_room_id".

use crate::api_error::ErrorItem;
use crate::call_options::{check_record_options, check_uuid};
use crate::fields::Fields;

/// `ringtone` (schema enum).
const RINGTONES: &[&str] = &[
    "at", "au", "be", "bg", "br", "ch", "cl", "cn", "cz", "de", "dk", "ee", "es", "fi", "fr", "gr",
    "hu", "il", "in", "it", "jp", "lt", "mx", "my", "nl", "no", "nz", "ph", "pl", "pt", "ru", "se",
    "sg", "th", "tw", "uk", "us-old", "us", "ve", "za",
];

/// A valid bridge.
#[derive(Debug, Clone)]
pub struct BridgeParams {
    /// The call to bridge with (the body's `call_control_id`).
    pub with: String,
    /// `park_after_unbridge: "self"`: the commanded leg stays up (parked) when the other leaves.
    pub park_after_unbridge: bool,
    /// `hold_after_unbridge: true`: the commanded leg stays up (on hold) when the other leaves.
    pub hold_after_unbridge: bool,
    pub prevent_double_bridge: bool,
}

/// Validates a bridge body. Errors go to `f.errors`; `None` only together with an error.
pub(crate) fn parse_bridge(f: &mut Fields<'_>) -> Option<BridgeParams> {
    let with = match f.raw("call_control_id") {
        None => {
            f.errors.push(ErrorItem::missing("call_control_id"));
            None
        }
        Some(_) => match f.opt_str("call_control_id") {
            Some(t) if t.trim().is_empty() => {
                f.errors.push(ErrorItem::missing("call_control_id"));
                None
            }
            other => other.map(str::to_owned),
        },
    };
    // `call_control_id` is required and "can't be used together with" either alternative, so a
    // body carrying `queue` or `video_room_id` is always contradictory.
    for alt in ["queue", "video_room_id"] {
        if f.has(alt) {
            f.errors.push(ErrorItem::invalid(
                alt,
                format!("'{alt}' can't be used together with 'call_control_id'."),
            ));
        }
    }
    f.opt_str("queue");
    check_uuid(f, "video_room_id");
    if f.opt_str("video_room_context").is_some() && !f.has("video_room_id") {
        f.errors.push(ErrorItem::invalid(
            "video_room_context",
            "'video_room_context' can be used only with 'video_room_id'.",
        ));
    }
    // The schema types it as a free string; only `self` has a documented meaning.
    let park = f.opt_str("park_after_unbridge") == Some("self");
    let hold = f.opt_bool("hold_after_unbridge").unwrap_or(false);
    let prevent = f.opt_bool("prevent_double_bridge").unwrap_or(false);
    f.opt_bool("play_ringtone");
    f.opt_enum("ringtone", RINGTONES);
    f.opt_enum("mute_dtmf", &["none", "both", "self", "opposite"]);
    check_record_options(f);
    if !f.errors.is_empty() {
        return None;
    }
    Some(BridgeParams {
        with: with?,
        park_after_unbridge: park,
        hold_after_unbridge: hold,
        prevent_double_bridge: prevent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn run(body: Value) -> Result<BridgeParams, Vec<ErrorItem>> {
        let obj = body.as_object().cloned().unwrap_or_default();
        let mut f = Fields::new(&obj);
        parse_bridge(&mut f).ok_or(f.errors)
    }

    #[test]
    fn defaults_follow_the_schema() {
        let p = run(json!({"call_control_id": "v3:abc"})).expect("valid");
        assert_eq!(p.with, "v3:abc");
        assert!(!p.park_after_unbridge && !p.hold_after_unbridge && !p.prevent_double_bridge);
        let p = run(
            json!({"call_control_id": "v3:abc", "park_after_unbridge": "self",
                           "hold_after_unbridge": true, "prevent_double_bridge": true,
                           "play_ringtone": true, "ringtone": "fr", "mute_dtmf": "opposite",
                           "record": "record-from-answer", "record_channels": "dual"}),
        )
        .expect("valid");
        assert!(p.park_after_unbridge && p.hold_after_unbridge && p.prevent_double_bridge);
    }

    #[test]
    fn collects_every_shape_error() {
        let e = run(json!({"queue": "support", "video_room_id": "room-1",
                           "video_room_context": "x", "hold_after_unbridge": "yes",
                           "prevent_double_bridge": 1, "play_ringtone": "no", "ringtone": "xx",
                           "mute_dtmf": "all", "record": "yes", "record_max_length": 50000}))
        .expect_err("invalid");
        let ptrs: Vec<_> = e.iter().filter_map(|e| e.pointer.clone()).collect();
        for p in [
            "/call_control_id",
            "/queue",
            "/video_room_id",
            "/hold_after_unbridge",
            "/prevent_double_bridge",
            "/play_ringtone",
            "/ringtone",
            "/mute_dtmf",
            "/record",
            "/record_max_length",
        ] {
            assert!(ptrs.contains(&p.to_string()), "{p} missing in {ptrs:?}");
        }
    }
}
