//! `bridge` between two calls of the app: the warm transfer (callee A, agent B dialled without a
//! stream and briefed with `speak`, A's stream stopped, B bridged with A), what each party
//! hears, the hang-ups that follow, `park_after_unbridge`, and the refusals.

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callway_audio::wav;
use serde_json::{json, Value};
use sim_telnyx::{BridgeOutcome, Callee, TelnyxSim};
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(8);
const AGENT: &str = "+33655556666";
const OTHER: &str = "+33677778888";

fn tone_wav(ms: usize) -> Vec<u8> {
    wav::to_bytes(&wav::Wav {
        sample_rate: 8000,
        samples: (0..ms * 8)
            .map(|i| {
                (8000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin()) as i16
            })
            .collect(),
    })
}

fn human(ms: usize, hang_up_after: Option<Duration>) -> Callee {
    Callee::Human {
        speech_wav: tone_wav(ms),
        hang_up_after,
    }
}

async fn setup() -> (TelnyxSim, WebhookReceiver) {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    (sim, hooks)
}

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

/// Dials `to` (body extras merged) and returns its call control id.
async fn dial_to(sim: &TelnyxSim, to: &str, extra: Value) -> String {
    let mut body = dial_body(extra);
    body["to"] = json!(to);
    let (s, v) = dial(sim, body).await;
    assert_eq!(s, 200, "{v}");
    v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_owned()
}

/// A plain dial (no stream) to a human who answers, up to `call.answered`.
async fn answered_call(
    sim: &TelnyxSim,
    hooks: &WebhookReceiver,
    to: &str,
    callee: Callee,
) -> String {
    sim.script_callee(to, callee).expect("script");
    let ccid = dial_to(sim, to, json!({})).await;
    wait_event(hooks, &ccid, "call.answered").await;
    ccid
}

#[tokio::test]
async fn warm_transfer_bridges_the_agent_with_the_callee_and_ends_both() {
    let (sim, hooks) = setup().await;
    let mut app = AppWsServer::start(None).await;
    // A: the callee, dialled earlier with a bidirectional stream to the app.
    sim.script_callee(TO, human(8000, None)).expect("callee");
    let a_state = STANDARD.encode("lead-42");
    let a = dial_to(
        &sim,
        TO,
        json!({"stream_url": app.url, "stream_track": "both_tracks",
               "stream_bidirectional_mode": "rtp", "client_state": a_state}),
    )
    .await;
    let (_, _, mut ws) = app.accept(WAIT).await;
    next_event(&mut ws, "start", WAIT).await;
    wait_event(&hooks, &a, "streaming.started").await;

    // B: the agent, a normal dial with no stream; it says 3 s, then hangs up 3 s after answering.
    let b = answered_call(
        &sim,
        &hooks,
        AGENT,
        human(3000, Some(Duration::from_secs(3))),
    )
    .await;
    let (s, v) = action(
        &sim,
        &b,
        "speak",
        json!({"payload": "Lead 42 wants a quote.", "voice": "female", "language": "en-US"}),
    )
    .await;
    assert_eq!(s, 200, "speak on a call dialled without stream_url: {v}");
    wait_event(&hooks, &b, "call.speak.ended").await;

    // The app stops A's stream, then bridges B with A.
    let (s, v) = action(&sim, &a, "streaming_stop", json!({})).await;
    assert_eq!(s, 200, "{v}");
    next_event(&mut ws, "stop", WAIT).await;
    wait_event(&hooks, &a, "streaming.stopped").await;
    let b_state = STANDARD.encode("agent-bridged");
    let (s, v) = action(
        &sim,
        &b,
        "bridge",
        json!({"call_control_id": a, "client_state": b_state, "command_id": "br-1"}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"data": {"result": "ok"}})));
    // The same command_id is ignored (answered as before, nothing bridged twice).
    let (s, v) = action(
        &sim,
        &b,
        "bridge",
        json!({"call_control_id": a, "command_id": "br-1"}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"data": {"result": "ok"}})));

    wait_event(&hooks, &a, "call.bridged").await;
    wait_event(&hooks, &b, "call.bridged").await;
    // Each leg's call.bridged carries its own ids and client state.
    let a_br = payload_of(&hooks, &a, "call.bridged");
    let b_br = payload_of(&hooks, &b, "call.bridged");
    assert_eq!(a_br["client_state"], json!(a_state));
    assert_eq!(b_br["client_state"], json!(b_state));
    assert_eq!(
        (a_br["to"].as_str(), b_br["to"].as_str()),
        (Some(TO), Some(AGENT))
    );
    assert_ne!(a_br["call_leg_id"], b_br["call_leg_id"]);

    // Each party hears the other while bridged.
    sim.wait_for(
        |r| {
            r.bridge_of(&a).is_some_and(|br| {
                br.leg.heard_voiced_frames >= 10 && br.with.heard_voiced_frames >= 10
            })
        },
        WAIT,
    )
    .await
    .expect("both parties heard");

    // B hangs up: A is hung up by Telnyx (park_after_unbridge absent).
    wait_event(&hooks, &b, "call.hangup").await;
    wait_event(&hooks, &a, "call.hangup").await;
    assert_eq!(
        events_of(&hooks, &a),
        vec![
            "call.initiated",
            "call.answered",
            "streaming.started",
            "streaming.stopped",
            "call.bridged",
            "call.hangup"
        ]
    );
    assert_eq!(
        events_of(&hooks, &b),
        vec![
            "call.initiated",
            "call.answered",
            "call.speak.started",
            "call.speak.ended",
            "call.bridged",
            "call.hangup"
        ]
    );
    let b_end = payload_of(&hooks, &b, "call.hangup");
    assert_eq!(
        (&b_end["hangup_cause"], &b_end["hangup_source"]),
        (&json!("normal_clearing"), &json!("callee"))
    );
    let a_end = payload_of(&hooks, &a, "call.hangup");
    assert_eq!(
        (&a_end["hangup_cause"], &a_end["hangup_source"]),
        (&json!("normal_clearing"), &json!("caller"))
    );

    let r = sim.recorded();
    assert_eq!(r.bridges.len(), 1, "the duplicate command bridged nothing");
    let br = r.bridge_of(&b).expect("bridge");
    assert_eq!(
        (
            br.leg.call_control_id.as_str(),
            br.with.call_control_id.as_str()
        ),
        (b.as_str(), a.as_str())
    );
    assert_eq!(br.outcome, BridgeOutcome::Ended);
    assert_eq!(br.hangup_order, vec![b.clone(), a.clone()]);
    assert_eq!(br.body["client_state"], json!(b_state));
    assert!(!br.leg.stays_after_unbridge);
    assert!(br.unbridged_at_ms.is_some_and(|t| t >= br.at_ms));
    // B heard A's callee, A heard the agent; only while bridged (A's stream was stopped).
    assert!(br.leg.heard_frames >= br.leg.heard_voiced_frames && br.leg.heard_frames > 0);
    assert!(br.leg.heard_app_pcm.is_empty() && br.with.heard_app_pcm.is_empty());
    let stream = r.stream_for(&a).expect("A's stream");
    assert!(stream.stop_sent);
    assert_eq!(
        r.commands
            .iter()
            .filter(|c| c.command == "bridge" && c.duplicate)
            .count(),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bridge_keeps_a_running_stream_and_park_after_unbridge_keeps_the_leg() {
    let (sim, hooks) = setup().await;
    let mut app = AppWsServer::start(None).await;
    sim.script_callee(TO, human(8000, None)).expect("callee");
    let a = dial_to(
        &sim,
        TO,
        json!({"stream_url": app.url, "stream_track": "both_tracks",
               "stream_bidirectional_mode": "rtp", "stream_bidirectional_target_legs": "opposite"}),
    )
    .await;
    let (_, _, mut ws) = app.accept(WAIT).await;
    next_event(&mut ws, "start", WAIT).await;
    let b = answered_call(
        &sim,
        &hooks,
        AGENT,
        human(3000, Some(Duration::from_millis(1200))),
    )
    .await;
    // Bridged on A (the streaming leg), which parks when B leaves.
    let (s, v) = action(
        &sim,
        &a,
        "bridge",
        json!({"call_control_id": b, "park_after_unbridge": "self"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_event(&hooks, &a, "call.bridged").await;
    // The app talks on A's stream with target `opposite`: the agent hears it.
    let words = callway_audio::mulaw::encode(&vec![6000i16; 1600]);
    send_text(&mut ws, &media_frame(&words)).await;
    wait_event(&hooks, &b, "call.hangup").await;
    let r = sim
        .wait_for(
            |r| {
                r.bridge_of(&a)
                    .is_some_and(|br| br.outcome == BridgeOutcome::Unbridged)
            },
            WAIT,
        )
        .await
        .expect("unbridged");
    let br = r.bridge_of(&a).expect("bridge");
    assert!(br.leg.stays_after_unbridge);
    assert!(
        !br.with.heard_app_pcm.is_empty(),
        "B heard the app through A's stream"
    );
    assert_eq!(br.hangup_order, vec![b.clone()]);
    // A stays up, parked: no hang-up, its stream goes on; it can be bridged again later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!events_of(&hooks, &a).contains(&"call.hangup".to_string()));
    let (s, v) = action(&sim, &a, "hangup", json!({})).await;
    assert_eq!(s, 200, "{v}");
    wait_event(&hooks, &a, "call.hangup").await;
    let r = sim.recorded();
    assert_eq!(
        r.bridge_of(&a).expect("bridge").outcome,
        BridgeOutcome::Ended
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bridge_refusals() {
    let (sim, hooks) = setup().await;
    let a = answered_call(&sim, &hooks, TO, human(4000, None)).await;
    let b = answered_call(&sim, &hooks, AGENT, human(4000, None)).await;
    let c = answered_call(&sim, &hooks, OTHER, human(4000, None)).await;

    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (a.as_str(), json!({}), 422, "10004"),
        (a.as_str(), json!({"call_control_id": ""}), 422, "10004"),
        (
            a.as_str(),
            json!({"call_control_id": "v3:nope"}),
            422,
            "90015",
        ),
        (a.as_str(), json!({"call_control_id": a}), 422, "10015"),
        (
            a.as_str(),
            json!({"call_control_id": b, "client_state": "not base64!"}),
            422,
            "10015",
        ),
        (
            a.as_str(),
            json!({"call_control_id": b, "queue": "support"}),
            422,
            "10015",
        ),
        (
            a.as_str(),
            json!({"call_control_id": b, "mute_dtmf": "all"}),
            422,
            "10032",
        ),
        (
            a.as_str(),
            json!({"call_control_id": b, "prevent_double_bridge": "yes"}),
            422,
            "10015",
        ),
        ("v3:unknown", json!({"call_control_id": b}), 422, "90015"),
    ];
    for (on, body, status, code) in cases {
        let (s, v) = action(&sim, on, "bridge", body.clone()).await;
        assert_eq!(
            (s, codes(&v).first().map(String::as_str)),
            (status, Some(code)),
            "{body}: {v}"
        );
    }
    // Nothing was bridged by a refusal.
    assert!(sim.recorded().bridges.is_empty());

    let (s, v) = action(&sim, &a, "bridge", json!({"call_control_id": b})).await;
    assert_eq!(s, 200, "{v}");
    wait_event(&hooks, &b, "call.bridged").await;
    // Double bridges: either side already bridged, with or without prevent_double_bridge.
    for (on, with) in [(&c, &a), (&a, &c), (&b, &c)] {
        for prevent in [false, true] {
            let (s, v) = action(
                &sim,
                on,
                "bridge",
                json!({"call_control_id": with, "prevent_double_bridge": prevent}),
            )
            .await;
            assert_eq!((s, codes(&v)), (422, vec!["10015".to_string()]), "{v}");
        }
    }
    // A transfer on a bridged call is refused as well.
    let (s, _) = action(&sim, &a, "transfer", json!({"to": "+33600000009"})).await;
    assert_eq!(s, 422);

    // An ended call, on either side.
    let (s, _) = action(&sim, &c, "hangup", json!({})).await;
    assert_eq!(s, 200);
    wait_event(&hooks, &c, "call.hangup").await;
    let (s, v) = action(&sim, &c, "bridge", json!({"call_control_id": a})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90018".to_string()]));
    let d = answered_call(&sim, &hooks, "+33600000010", human(1000, None)).await;
    let (s, v) = action(&sim, &d, "bridge", json!({"call_control_id": c})).await;
    assert_eq!(
        (s, codes(&v), pointers(&v)),
        (
            422,
            vec!["90018".to_string()],
            vec!["/call_control_id".to_string()]
        )
    );
    assert_eq!(sim.recorded().bridges.len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_agent_who_does_not_answer_cannot_be_bridged_and_leaves_the_callee_alone() {
    let (sim, hooks) = setup().await;
    let a = answered_call(&sim, &hooks, TO, human(4000, None)).await;
    sim.script_callee(AGENT, Callee::NoAnswer).expect("agent");
    let b = dial_to(&sim, AGENT, json!({})).await;
    // While B rings: neither side can bridge.
    let (s, v) = action(&sim, &b, "bridge", json!({"call_control_id": a})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90034".to_string()]), "{v}");
    let (s, v) = action(
        &sim,
        &a,
        "bridge",
        json!({"call_control_id": b, "play_ringtone": true}),
    )
    .await;
    assert_eq!(
        (s, codes(&v), pointers(&v)),
        (
            422,
            vec!["90034".to_string()],
            vec!["/call_control_id".to_string()]
        ),
        "{v}"
    );
    // B rings out; then it has ended.
    wait_event(&hooks, &b, "call.hangup").await;
    assert_eq!(
        payload_of(&hooks, &b, "call.hangup")["hangup_cause"],
        json!("timeout")
    );
    let (s, v) = action(&sim, &a, "bridge", json!({"call_control_id": b})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90018".to_string()]), "{v}");
    // A is untouched and still takes commands.
    assert_eq!(
        events_of(&hooks, &a),
        vec!["call.initiated", "call.answered"]
    );
    let (s, v) = action(
        &sim,
        &a,
        "speak",
        json!({"payload": "Sorry, nobody is free.", "voice": "female", "language": "en-US"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    wait_event(&hooks, &a, "call.speak.ended").await;
    assert!(sim.recorded().bridges.is_empty());
    sim.shutdown().await;
}
