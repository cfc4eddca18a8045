//! Property tests (proptest) of the bridge's two untrusted parsers: Telnyx media-stream frames
//! and OpenAI Realtime server events. Whatever arrives on a socket, `parse` returns a frame or
//! an error — never a panic — and the outbound builders round-trip. Bounded case counts (see
//! documentations.md for timings).

use media_bridge::core::{openai_events, telnyx_frames};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::from),
        "[0-9 +-]{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with `tag` = one of `names` (or anything) and random values under `keys`,
/// nested one level under `sections` too (`media`, `start`, `response`, `error`…).
fn shaped(
    tag: &'static str,
    names: &'static [&'static str],
    keys: &'static [&'static str],
    sections: &'static [&'static str],
) -> impl Strategy<Value = Value> {
    let name = prop_oneof![
        prop::sample::select(names).prop_map(Value::from),
        json_value(),
    ];
    let fields = prop::collection::vec((prop::sample::select(keys), json_value()), 0..8);
    let nested = prop::collection::vec(
        (
            prop::sample::select(sections),
            prop::collection::vec((prop::sample::select(keys), json_value()), 0..6),
        ),
        0..3,
    );
    (name, fields, nested).prop_map(move |(name, fields, nested)| {
        let mut obj = serde_json::Map::new();
        obj.insert(tag.to_owned(), name);
        for (k, v) in fields {
            obj.insert(k.to_owned(), v);
        }
        for (section, inner) in nested {
            let inner: serde_json::Map<String, Value> =
                inner.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            obj.insert(section.to_owned(), Value::Object(inner));
        }
        Value::Object(obj)
    })
}

const TELNYX_EVENTS: &[&str] = &[
    "connected",
    "start",
    "media",
    "mark",
    "dtmf",
    "stop",
    "error",
    "clear",
];
const TELNYX_KEYS: &[&str] = &[
    "sequence_number",
    "stream_id",
    "version",
    "call_control_id",
    "call_session_id",
    "client_state",
    "custom_parameters",
    "media_format",
    "encoding",
    "sample_rate",
    "channels",
    "track",
    "chunk",
    "timestamp",
    "payload",
    "name",
    "digit",
    "code",
    "title",
    "detail",
    "to",
    "from",
];
const TELNYX_SECTIONS: &[&str] = &["start", "media", "mark", "dtmf", "stop", "error", "payload"];

const OPENAI_TYPES: &[&str] = &[
    "session.created",
    "session.updated",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "response.created",
    "response.done",
    "response.output_audio.delta",
    "response.output_audio.done",
    "response.function_call_arguments.done",
    "conversation.item.truncated",
    "error",
];
const OPENAI_KEYS: &[&str] = &[
    "id",
    "status",
    "response_id",
    "item_id",
    "delta",
    "call_id",
    "name",
    "arguments",
    "audio_start_ms",
    "audio_end_ms",
    "type",
    "code",
    "message",
    "event_id",
];
const OPENAI_SECTIONS: &[&str] = &["response", "error"];

/// Cases per property: raw text is cheap to generate, JSON trees are not (debug builds).
const TEXT_CASES: u32 = 4000;
const JSON_CASES: u32 = 1500;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(TEXT_CASES))]

    #[test]
    fn telnyx_frames_from_any_text(text in ".{0,300}") {
        prop_assert_eq!(telnyx_frames::parse(&text), telnyx_frames::parse_general(&text));
    }

    #[test]
    fn openai_events_from_any_text(text in ".{0,300}") {
        prop_assert_eq!(openai_events::parse(&text), openai_events::parse_general(&text));
    }

    /// What we send is what a peer (and our own parser) reads back.
    #[test]
    fn outbound_frames_round_trip(payload in "[A-Za-z0-9+/]{0,64}={0,2}", name in ".{0,40}") {
        let media = telnyx_frames::parse(&telnyx_frames::media(&payload));
        let is_media = matches!(media, Ok(telnyx_frames::TelnyxFrame::Media(ref m)) if m.payload == payload);
        prop_assert!(is_media, "{:?}", media);
        let mark = telnyx_frames::parse(&telnyx_frames::mark(&name));
        let is_mark = matches!(mark, Ok(telnyx_frames::TelnyxFrame::Mark { name: ref n, .. }) if *n == name);
        prop_assert!(is_mark, "{:?}", mark);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(JSON_CASES))]

    #[test]
    fn telnyx_frames_from_telnyx_shaped_json(v in shaped("event", TELNYX_EVENTS, TELNYX_KEYS, TELNYX_SECTIONS)) {
        let text = v.to_string();
        // The fast path for media frames reads exactly what the general parser reads.
        prop_assert_eq!(telnyx_frames::parse(&text), telnyx_frames::parse_general(&text));
        if let Ok(frame) = telnyx_frames::parse(&text) {
            let _ = frame.sequence_number();
            if let telnyx_frames::TelnyxFrame::Start(s) = frame {
                if let Some(f) = s.media_format {
                    let _ = f.is_pcmu_8k_mono();
                }
            }
        }
    }

    #[test]
    fn openai_events_from_openai_shaped_json(v in shaped("type", OPENAI_TYPES, OPENAI_KEYS, OPENAI_SECTIONS)) {
        let text = v.to_string();
        prop_assert_eq!(openai_events::parse(&text), openai_events::parse_general(&text));
    }
}

/// Deep nesting is a classic parser crash (stack overflow): serde_json's recursion limit
/// turns it into an error.
#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(telnyx_frames::parse(&deep).is_err());
    assert!(openai_events::parse(&deep).is_err());
    let deep_obj = format!(
        r#"{{"event":"media","media":{}1{}}}"#,
        r#"{"a":"#.repeat(50_000),
        "}".repeat(50_000)
    );
    assert!(telnyx_frames::parse(&deep_obj).is_err());
}
