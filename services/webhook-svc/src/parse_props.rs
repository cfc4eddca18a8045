//! Property tests (proptest) of what an attacker controls before and after the signature check:
//! the signature/timestamp headers, the raw body, and the envelope parsed from it. Properties:
//! nothing panics, nothing unsigned verifies, a signed body verifies only unmodified and in the
//! window, and a parse error never quotes a value (a phone sent as a JSON number).
//! Case counts are fixed so the run is bounded (see documentations.md for timings).

use crate::events::{CallEvent, Envelope};
use crate::signature::{SignatureError, WebhookKey, TOLERANCE_SECS};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callway_core::call_context::CallRef;
use proptest::prelude::*;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{json, Value};

fn pair() -> (Ed25519KeyPair, WebhookKey) {
    let kp = Ed25519KeyPair::from_seed_unchecked(&[9u8; 32]).expect("seed");
    let key = WebhookKey::from_base64(&STANDARD.encode(kp.public_key().as_ref())).expect("key");
    (kp, key)
}

fn sign(kp: &Ed25519KeyPair, ts: &str, body: &[u8]) -> String {
    let mut m = ts.as_bytes().to_vec();
    m.push(b'|');
    m.extend_from_slice(body);
    STANDARD.encode(kp.sign(&m).as_ref())
}

/// Timestamps as Telnyx could never send them, and as it does.
fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|t| t.to_string()),
        Just(i64::MIN.to_string()),
        Just(i64::MAX.to_string()),
        "[-+ ]?[0-9]{0,25}",
        ".{0,30}",
    ]
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const EVENT_TYPES: &[&str] = &[
    "call.initiated",
    "call.answered",
    "call.machine.premium.detection.ended",
    "call.machine.premium.greeting.ended",
    "call.machine.detection.ended",
    "call.machine.greeting.ended",
    "call.speak.ended",
    "streaming.started",
    "streaming.failed",
    "call.hangup",
    "call.unknown",
];
const PAYLOAD_KEYS: &[&str] = &[
    "call_control_id",
    "client_state",
    "result",
    "hangup_cause",
    "failure_reason",
    "status",
    "to",
    "from",
];

/// Envelopes shaped like Telnyx's, with every field's value and type drawn at random.
fn envelope_like() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(EVENT_TYPES),
        json_value(),
        prop::collection::vec((prop::sample::select(PAYLOAD_KEYS), json_value()), 0..8),
        any::<bool>(),
    )
        .prop_map(|(event_type, id, fields, string_id)| {
            let payload: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            let id = if string_id { json!("evt") } else { id };
            json!({"data": {"id": id, "event_type": event_type, "payload": payload}, "meta": {}})
        })
}

/// Cases per property: bytes and headers are cheap to generate, JSON trees are not (debug
/// builds), and each signature check costs an Ed25519 verification.
const CHEAP_CASES: u32 = 3000;
const JSON_CASES: u32 = 1500;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CHEAP_CASES))]

    /// Headers and body of any shape: a verdict, never a panic, and never "verified".
    #[test]
    fn unsigned_input_never_verifies_nor_panics(
        sig in prop::option::of(".{0,100}"),
        ts in prop::option::of(timestamp()),
        body in prop::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
    ) {
        let (_, key) = pair();
        let got = key.verify(sig.as_deref(), ts.as_deref(), &body, now);
        prop_assert!(got.is_err());
    }

    /// A real signature verifies inside the window only, and only over the exact bytes.
    #[test]
    fn a_signature_holds_for_its_exact_bytes_and_window(
        ts in any::<i64>(),
        skew in any::<i64>(),
        body in prop::collection::vec(any::<u8>(), 1..256),
        flip in any::<prop::sample::Index>(),
    ) {
        let (kp, key) = pair();
        let t = ts.to_string();
        let sig = sign(&kp, &t, &body);
        let now = ts.saturating_add(skew);
        let fresh = now.abs_diff(ts) <= TOLERANCE_SECS as u64;
        let got = key.verify(Some(&sig), Some(&t), &body, now);
        prop_assert_eq!(got, if fresh { Ok(()) } else { Err(SignatureError::Stale) });
        let mut tampered = body.clone();
        let i = flip.index(tampered.len());
        tampered[i] ^= 0x01;
        let got = key.verify(Some(&sig), Some(&t), &tampered, ts);
        prop_assert_eq!(got, Err(SignatureError::Forged));
    }

    /// Arbitrary bytes after a valid signature: the envelope parser and the event mapping
    /// never panic.
    #[test]
    fn any_body_parses_or_is_refused_without_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(env) = serde_json::from_slice::<Envelope>(&body) {
            let _ = CallEvent::from(&env.data);
            if let Some(cs) = env.data.payload.client_state.as_deref() {
                let _ = CallRef::from_client_state(cs);
            }
        }
    }

    /// A phone number sent as a JSON number in any field we read: the error we log does not
    /// carry it.
    #[test]
    fn a_number_in_any_read_field_is_not_logged(
        key in prop::sample::select(PAYLOAD_KEYS),
        n in 10_000_000u64..=999_999_999_999_999,
    ) {
        let body = json!({"data": {"id": "evt", "event_type": "call.hangup", "payload": {key: n}}});
        let bytes = serde_json::to_vec(&body).expect("serialise");
        if let Err(e) = serde_json::from_slice::<Envelope>(&bytes) {
            let logged = callway_core::json_error::describe(&e);
            prop_assert!(!logged.contains(&n.to_string()), "{}", logged);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(JSON_CASES))]

    /// Telnyx-shaped envelopes with random values and types under the keys we read.
    #[test]
    fn telnyx_shaped_envelopes_map_to_an_event_without_panic(v in envelope_like()) {
        let bytes = serde_json::to_vec(&v).expect("serialise");
        match serde_json::from_slice::<Envelope>(&bytes) {
            Ok(env) => {
                let _ = CallEvent::from(&env.data);
                if let Some(cs) = env.data.payload.client_state.as_deref() {
                    let _ = CallRef::from_client_state(cs);
                }
            }
            Err(e) => {
                // What gets logged for an unreadable body is a kind and a position, no value.
                let logged = callway_core::json_error::describe(&e);
                let expected = format!(" at line {} column {}", e.line(), e.column());
                prop_assert!(logged.ends_with(&expected), "{}", logged);
                prop_assert!(!logged.contains('`'), "{}", logged);
            }
        }
    }
}
