//! Inbound calls: `call.initiated` parked, the app's `answer` (validated per `AnswerRequest`),
//! the media stream, the caller's script, and the unanswered cases.

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callway_audio::{mulaw, wav};
use serde_json::{json, Value};
use sim_telnyx::{Caller, Line, TelnyxSim};
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(8);
const CALLER: &str = "+33611112222";

pub fn tone_wav(ms: usize) -> Vec<u8> {
    wav::to_bytes(&wav::Wav {
        sample_rate: 8000,
        samples: (0..ms * 8)
            .map(|i| {
                (8000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin()) as i16
            })
            .collect(),
    })
}

async fn setup() -> (TelnyxSim, WebhookReceiver) {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    (sim, hooks)
}

/// Accepted webhooks of one call, in arrival order.
fn events_of(hooks: &WebhookReceiver, ccid: &str) -> Vec<String> {
    hooks
        .hooks()
        .iter()
        .filter(|h| h.accepted() && h.payload()["call_control_id"] == ccid)
        .map(|h| h.event_type().to_string())
        .collect()
}

fn payload_of(hooks: &WebhookReceiver, ccid: &str, event: &str) -> Value {
    hooks
        .hooks()
        .iter()
        .find(|h| h.accepted() && h.payload()["call_control_id"] == ccid && h.event_type() == event)
        .map(|h| h.payload().clone())
        .unwrap_or_else(|| panic!("no {event} for {ccid}"))
}

async fn wait_event(hooks: &WebhookReceiver, ccid: &str, event: &str) {
    hooks
        .wait_until(event, WAIT, |h| {
            h.iter().any(|h| {
                h.accepted() && h.event_type() == event && h.payload()["call_control_id"] == ccid
            })
        })
        .await;
}

#[tokio::test]
async fn an_inbound_call_answered_with_a_stream_carries_the_callers_lines() {
    let (sim, hooks) = setup().await;
    let mut app = AppWsServer::start(None).await;
    let ccid = sim
        .ring_inbound(
            CALLER,
            FROM,
            Caller::Talks {
                lines: vec![Line::at(Duration::from_millis(200), tone_wav(300))],
                hang_up_after: Some(Duration::from_millis(900)),
            },
        )
        .expect("rings");
    wait_event(&hooks, &ccid, "call.initiated").await;
    let init = payload_of(&hooks, &ccid, "call.initiated");
    assert_eq!(init["direction"], "incoming");
    assert_eq!(init["state"], "parked");
    assert_eq!(init["from"], CALLER);
    assert_eq!(init["to"], FROM);
    assert_eq!(init["connection_id"], CONN);
    assert!(init["call_leg_id"].is_string() && init["call_session_id"].is_string());
    assert!(init["client_state"].is_null(), "nothing set it yet");

    let cs = STANDARD.encode(r#"{"lead":"42"}"#);
    let (s, v) = action(
        &sim,
        &ccid,
        "answer",
        json!({"client_state": cs, "command_id": "ans-1", "stream_url": app.url,
               "stream_track": "both_tracks", "stream_bidirectional_mode": "rtp",
               "stream_bidirectional_codec": "PCMU", "stream_auth_token": "secret"}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"data": {"result": "ok"}})));
    let (headers, _, mut ws) = app.accept(WAIT).await;
    assert!(
        headers.get(sim_telnyx::STREAM_AUTH_HEADER).is_none(),
        "AnswerRequest has no stream_auth_token: nothing is sent"
    );
    let (start, _) = next_event(&mut ws, "start", WAIT).await;
    assert_eq!(start["start"]["call_control_id"], ccid.as_str());
    assert_eq!(start["start"]["from"], CALLER);
    assert_eq!(start["start"]["client_state"], cs.as_str());
    let (stop, before) = next_event(&mut ws, "stop", WAIT).await;
    assert_eq!(stop["event"], "stop");
    let inbound: Vec<Vec<u8>> = before
        .iter()
        .filter(|f| f["event"] == "media" && f["media"]["track"] == "inbound")
        .map(|f| {
            STANDARD
                .decode(f["media"]["payload"].as_str().expect("payload"))
                .expect("base64")
        })
        .collect();
    let voiced = inbound
        .iter()
        .filter(|p| p.iter().any(|b| *b != mulaw::SILENCE))
        .count();
    assert!(
        (10..=16).contains(&voiced),
        "300 ms of the caller's line in 20 ms frames: {voiced} of {}",
        inbound.len()
    );
    let first_voiced = inbound
        .iter()
        .position(|p| p.iter().any(|b| *b != mulaw::SILENCE))
        .expect("voiced");
    assert!(
        first_voiced >= 7,
        "the line starts 200 ms after the answer: frame {first_voiced}"
    );

    wait_event(&hooks, &ccid, "call.hangup").await;
    assert_eq!(
        events_of(&hooks, &ccid),
        vec![
            "call.initiated",
            "call.answered",
            "streaming.started",
            "streaming.stopped",
            "call.hangup"
        ]
    );
    let hangup = payload_of(&hooks, &ccid, "call.hangup");
    assert_eq!(hangup["hangup_cause"], "normal_clearing");
    assert_eq!(hangup["hangup_source"], "caller");
    assert_eq!(hangup["sip_hangup_cause"], "unspecified");
    assert_eq!(
        hangup["client_state"],
        cs.as_str(),
        "answer's client_state carried on"
    );
    assert_eq!(
        payload_of(&hooks, &ccid, "call.answered")["client_state"],
        cs.as_str()
    );

    let r = sim.recorded();
    let rec = r.inbound_call(&ccid).expect("recorded");
    assert_eq!((rec.from.as_str(), rec.to.as_str()), (CALLER, FROM));
    assert_eq!(rec.answer.as_ref().expect("answer")["command_id"], "ans-1");
    assert_eq!(
        rec.answer_ignored_fields,
        vec!["stream_auth_token".to_string()]
    );
    assert!(rec.answered_at_ms.is_some());
    assert_eq!(rec.hangup_cause.as_deref(), Some("normal_clearing"));
    sim.shutdown().await;
}

#[tokio::test]
async fn answers_the_spec_refuses_are_422_and_change_nothing() {
    let (sim, hooks) = setup().await;
    let ccid = sim
        .ring_inbound(
            CALLER,
            FROM,
            Caller::Human {
                speech_wav: tone_wav(200),
                hang_up_after: None,
            },
        )
        .expect("rings");
    let cases = [
        (
            json!({"client_state": "not base64!"}),
            "10015",
            "/client_state",
        ),
        (
            json!({"stream_track": "both_tracks"}),
            "10004",
            "/stream_url",
        ),
        (
            json!({"stream_url": "https://app/media"}),
            "10015",
            "/stream_url",
        ),
        (
            json!({"stream_url": "wss://app/media", "stream_bidirectional_codec": "PCMU"}),
            "10015",
            "/stream_bidirectional_codec",
        ),
        (
            json!({"stream_url": "wss://app/media", "stream_bidirectional_mode": "RTP"}),
            "10032",
            "/stream_bidirectional_mode",
        ),
        (
            json!({"stream_url": "wss://app/media", "stream_bidirectional_target_legs": "agent"}),
            "10032",
            "/stream_bidirectional_target_legs",
        ),
        (json!({"webhook_url": "ftp://x"}), "10015", "/webhook_url"),
        (
            json!({"deepfake_detection": {"enabled": true, "rtp_timeout": 500}}),
            "10033",
            "/deepfake_detection/rtp_timeout",
        ),
    ];
    for (body, code, pointer) in cases {
        let (s, v) = action(&sim, &ccid, "answer", body.clone()).await;
        assert_eq!(
            (s, codes(&v), pointers(&v)),
            (422, vec![code.to_string()], vec![pointer.to_string()]),
            "{body}"
        );
    }
    let (s, v) = action(&sim, "v3:unknown", "answer", json!({})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90015".to_string()]));
    // Parked: nothing but answer, hangup and client_state_update may be done.
    let (s, v) = action(
        &sim,
        &ccid,
        "speak",
        json!({"payload": "Allo", "voice": "female"}),
    )
    .await;
    assert_eq!((s, codes(&v)), (422, vec!["90034".to_string()]));
    assert!(
        !events_of(&hooks, &ccid).contains(&"call.answered".to_string()),
        "refused answers answer nothing"
    );

    let (s, _) = action(&sim, &ccid, "answer", json!({"command_id": "a-1"})).await;
    assert_eq!(s, 200);
    let (s, v) = action(&sim, &ccid, "answer", json!({"command_id": "a-1"})).await;
    assert_eq!(
        (s, v),
        (200, json!({"data": {"result": "ok"}})),
        "same command_id: ignored"
    );
    let (s, v) = action(&sim, &ccid, "answer", json!({"command_id": "a-2"})).await;
    assert_eq!(
        (s, codes(&v)),
        (422, vec!["10015".to_string()]),
        "double answer"
    );
    wait_event(&hooks, &ccid, "call.answered").await;
    let (s, _) = action(&sim, &ccid, "hangup", json!({})).await;
    assert_eq!(s, 200);
    let (s, v) = action(&sim, &ccid, "answer", json!({})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90018".to_string()]), "ended");
    wait_event(&hooks, &ccid, "call.hangup").await;
    let hangup = payload_of(&hooks, &ccid, "call.hangup");
    assert_eq!(hangup["hangup_source"], "callee", "Telnyx's side hung up");
    let r = sim.recorded();
    assert_eq!(
        events_of(&hooks, &ccid)
            .iter()
            .filter(|e| *e == "call.answered")
            .count(),
        1
    );
    let answers: Vec<(u16, bool)> = r
        .commands
        .iter()
        .filter(|c| c.command == "answer" && c.call_control_id == ccid)
        .map(|c| (c.status, c.duplicate))
        .collect();
    assert_eq!(answers.iter().filter(|a| a.0 == 200).count(), 2);
    assert_eq!(answers.iter().filter(|a| a.1).count(), 1);

    // An outgoing call cannot be answered.
    let (_, v) = dial(&sim, dial_body(json!({}))).await;
    let out = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let (s, v) = action(&sim, &out, "answer", json!({})).await;
    assert_eq!(
        (s, pointers(&v)),
        (422, vec!["/call_control_id".to_string()])
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unanswered_inbound_calls_end_by_timeout_or_by_the_caller() {
    let (sim, hooks) = setup().await;
    assert!(
        sim.ring_inbound(
            CALLER,
            "+33199999999",
            Caller::HangsUpBeforeAnswer {
                after: Duration::ZERO
            }
        )
        .is_err(),
        "not a number of the account"
    );
    assert!(sim
        .ring_inbound(
            "0611112222",
            FROM,
            Caller::HangsUpBeforeAnswer {
                after: Duration::ZERO
            }
        )
        .is_err());
    let ignored = sim
        .ring_inbound(
            CALLER,
            FROM,
            Caller::Human {
                speech_wav: tone_wav(100),
                hang_up_after: None,
            },
        )
        .expect("rings");
    let gives_up = sim
        .ring_inbound(
            "+33633334444",
            FROM,
            Caller::HangsUpBeforeAnswer {
                after: Duration::from_millis(200),
            },
        )
        .expect("rings");
    wait_event(&hooks, &gives_up, "call.hangup").await;
    let h = payload_of(&hooks, &gives_up, "call.hangup");
    assert_eq!(
        (&h["hangup_cause"], &h["hangup_source"]),
        (&json!("originator_cancel"), &json!("caller"))
    );
    assert_eq!(
        events_of(&hooks, &gives_up),
        vec!["call.initiated", "call.hangup"]
    );
    assert!(
        !events_of(&hooks, &ignored).contains(&"call.hangup".to_string()),
        "the first command timeout (800 ms) has not passed"
    );
    wait_event(&hooks, &ignored, "call.hangup").await;
    let h = payload_of(&hooks, &ignored, "call.hangup");
    assert_eq!(
        (
            &h["hangup_cause"],
            &h["hangup_source"],
            &h["sip_hangup_cause"]
        ),
        (&json!("timeout"), &json!("callee"), &json!("unspecified"))
    );
    assert_eq!(
        events_of(&hooks, &ignored),
        vec!["call.initiated", "call.hangup"]
    );
    let (s, v) = action(&sim, &ignored, "answer", json!({})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90018".to_string()]), "too late");
    let r = sim.recorded();
    let rec = r.inbound_call(&ignored).expect("recorded");
    assert_eq!(rec.hangup_cause.as_deref(), Some("timeout"));
    assert!(rec.answer.is_none() && rec.answered_at_ms.is_none());
    assert!(rec.ended_at_ms.expect("ended") >= rec.at_ms + 750);
    sim.shutdown().await;
}
