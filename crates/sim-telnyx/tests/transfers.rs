//! `transfer` to scripted human agents: the agent leg's webhooks, `call.bridged` on both legs,
//! what each party hears through the original call's stream, and the failed transfers.

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callway_audio::{mulaw, wav};
use serde_json::{json, Value};
use sim_telnyx::{Agent, Caller, TelnyxSim, TransferOutcome};
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(8);
const CALLER: &str = "+33611112222";
const AGENT: &str = "+33655556666";

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

/// An inbound call answered (optionally with a stream), up to `call.answered`.
async fn answered_inbound(sim: &TelnyxSim, hooks: &WebhookReceiver, answer: Value) -> String {
    let ccid = sim
        .ring_inbound(
            CALLER,
            FROM,
            Caller::Human {
                speech_wav: tone_wav(5000),
                hang_up_after: None,
            },
        )
        .expect("rings");
    wait_event(hooks, &ccid, "call.initiated").await;
    let (s, v) = action(sim, &ccid, "answer", answer).await;
    assert_eq!(s, 200, "{v}");
    wait_event(hooks, &ccid, "call.answered").await;
    ccid
}

#[tokio::test]
async fn a_transfer_to_an_answering_agent_bridges_both_legs() {
    let (sim, hooks) = setup().await;
    let mut app = AppWsServer::start(None).await;
    sim.script_agent(
        AGENT,
        Agent::Answers {
            speech_wav: tone_wav(2000),
            hang_up_after: Some(Duration::from_millis(800)),
        },
    )
    .expect("agent");
    let ccid = answered_inbound(
        &sim,
        &hooks,
        json!({"stream_url": app.url, "stream_track": "both_tracks",
               "stream_bidirectional_mode": "rtp", "stream_bidirectional_target_legs": "opposite"}),
    )
    .await;
    let (_, _, mut ws) = app.accept(WAIT).await;
    next_event(&mut ws, "start", WAIT).await;

    let a_state = STANDARD.encode("transferring");
    let b_state = STANDARD.encode("agent-leg");
    let (s, v) = action(
        &sim,
        &ccid,
        "transfer",
        json!({"to": AGENT, "client_state": a_state, "target_leg_client_state": b_state,
               "timeout_secs": 20, "command_id": "t-1"}),
    )
    .await;
    assert_eq!((s, v), (200, json!({"data": {"result": "ok"}})));
    let r = sim
        .wait_for(
            |r| {
                r.transfer_of(&ccid)
                    .is_some_and(|t| t.outcome == TransferOutcome::Bridged)
            },
            WAIT,
        )
        .await
        .expect("bridged");
    let agent = r
        .transfer_of(&ccid)
        .expect("transfer")
        .agent_call_control_id
        .clone();
    // While bridged the stream goes on: the app talks (target `opposite`: the agent hears it)
    // and the outbound track carries the agent's voice to the caller.
    let words = mulaw::encode(&vec![6000i16; 1600]);
    send_text(&mut ws, &media_frame(&words)).await;
    let (_, frames) = next_event(&mut ws, "stop", WAIT).await;
    let voiced_out = frames
        .iter()
        .filter(|f| f["event"] == "media" && f["media"]["track"] == "outbound")
        .filter(|f| {
            STANDARD
                .decode(f["media"]["payload"].as_str().unwrap_or(""))
                .is_ok_and(|p| p.iter().any(|b| *b != mulaw::SILENCE))
        })
        .count();
    assert!(
        voiced_out >= 20,
        "the agent's voice on the outbound track: {voiced_out}"
    );

    wait_event(&hooks, &ccid, "call.hangup").await;
    wait_event(&hooks, &agent, "call.hangup").await;
    assert_eq!(
        events_of(&hooks, &agent),
        vec![
            "call.initiated",
            "call.answered",
            "call.bridged",
            "call.hangup"
        ]
    );
    assert_eq!(
        events_of(&hooks, &ccid),
        vec![
            "call.initiated",
            "call.answered",
            "streaming.started",
            "call.bridged",
            "streaming.stopped",
            "call.hangup"
        ]
    );
    let init = payload_of(&hooks, &agent, "call.initiated");
    assert_eq!(init["direction"], "outgoing");
    assert_eq!(
        (&init["to"], &init["from"]),
        (&json!(AGENT), &json!(FROM)),
        "from defaults to the original call's to"
    );
    let original = payload_of(&hooks, &ccid, "call.initiated");
    assert_eq!(
        init["call_session_id"], original["call_session_id"],
        "one session"
    );
    assert_ne!(init["call_leg_id"], original["call_leg_id"]);
    assert_eq!(
        payload_of(&hooks, &agent, "call.bridged")["client_state"],
        b_state.as_str()
    );
    assert_eq!(
        payload_of(&hooks, &ccid, "call.bridged")["client_state"],
        a_state.as_str()
    );
    let agent_end = payload_of(&hooks, &agent, "call.hangup");
    assert_eq!(
        (&agent_end["hangup_cause"], &agent_end["hangup_source"]),
        (&json!("normal_clearing"), &json!("callee"))
    );
    // No park_after_unbridge: the original leg is hung up when the agent leaves.
    let a_end = payload_of(&hooks, &ccid, "call.hangup");
    assert_eq!(
        (&a_end["hangup_cause"], &a_end["hangup_source"]),
        (&json!("normal_clearing"), &json!("callee"))
    );

    let r = sim.recorded();
    let t = r.transfer_of(&ccid).expect("transfer");
    assert_eq!(t.outcome, TransferOutcome::Ended);
    assert_eq!(t.agent_hangup_cause.as_deref(), Some("normal_clearing"));
    assert!(
        t.agent_heard_caller_frames > 10,
        "{}",
        t.agent_heard_caller_frames
    );
    let loud = t
        .agent_heard_app_pcm
        .iter()
        .filter(|s| s.abs() > 3000)
        .count();
    assert!(loud >= 1500, "the agent heard the app's 200 ms: {loud}");
    let stream = r.stream_for(&ccid).expect("stream");
    assert!(
        stream.played_pcm.is_empty(),
        "target `opposite`: the caller did not hear the app"
    );
    assert_eq!(stream.unheard_app_bytes, 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_transfer_nobody_answers_leaves_the_original_call_up() {
    let (sim, hooks) = setup().await;
    sim.script_agent(AGENT, Agent::NoAnswer).expect("agent");
    sim.script_agent("+33677778888", Agent::Busy)
        .expect("agent");
    let ccid = answered_inbound(&sim, &hooks, json!({})).await;
    let (s, _) = action(
        &sim,
        &ccid,
        "transfer",
        json!({"to": AGENT, "audio_url": "https://app/ring.wav"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = action(&sim, &ccid, "transfer", json!({"to": "+33677778888"})).await;
    assert_eq!(
        (s, codes(&v)),
        (422, vec!["10015".to_string()]),
        "one transfer at a time"
    );
    let r = sim
        .wait_for(
            |r| {
                r.transfer_of(&ccid)
                    .is_some_and(|t| t.outcome == TransferOutcome::NoAnswer)
            },
            WAIT,
        )
        .await
        .expect("rang out");
    let agent = r
        .transfer_of(&ccid)
        .expect("t")
        .agent_call_control_id
        .clone();
    wait_event(&hooks, &agent, "call.hangup").await;
    assert_eq!(
        events_of(&hooks, &agent),
        vec!["call.initiated", "call.hangup"]
    );
    let h = payload_of(&hooks, &agent, "call.hangup");
    assert_eq!(
        (&h["hangup_cause"], &h["sip_hangup_cause"]),
        (&json!("timeout"), &json!("480"))
    );
    // "The original call will remain active and may be issued additional commands."
    assert_eq!(
        events_of(&hooks, &ccid),
        vec!["call.initiated", "call.answered"]
    );
    let get = http()
        .get(format!("{}/v2/calls/{ccid}", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("get");
    let v: Value = get.json().await.expect("json");
    assert_eq!(v["data"]["is_alive"], true);

    let (s, v) = action(&sim, &ccid, "transfer", json!({"to": "+33677778888"})).await;
    assert_eq!(s, 200, "another destination after a failed transfer: {v}");
    let r = sim
        .wait_for(
            |r| {
                r.transfer_of(&ccid)
                    .is_some_and(|t| t.outcome == TransferOutcome::Busy)
            },
            WAIT,
        )
        .await
        .expect("busy");
    let busy = r
        .transfer_of(&ccid)
        .expect("t")
        .agent_call_control_id
        .clone();
    wait_event(&hooks, &busy, "call.hangup").await;
    assert_eq!(
        payload_of(&hooks, &busy, "call.hangup")["hangup_cause"],
        "user_busy"
    );
    assert_eq!(r.transfers.len(), 2);
    assert_eq!(
        r.transfers[0].announce.as_deref(),
        Some("https://app/ring.wav")
    );

    // A third transfer, then the caller's call ends while the agent rings: the ringing is
    // cancelled.
    let (s, _) = action(&sim, &ccid, "transfer", json!({"to": AGENT})).await;
    assert_eq!(s, 200);
    let (s, _) = action(&sim, &ccid, "hangup", json!({})).await;
    assert_eq!(s, 200);
    let r = sim
        .wait_for(
            |r| r.transfers.len() == 3 && r.transfers[2].outcome == TransferOutcome::Cancelled,
            WAIT,
        )
        .await
        .expect("cancelled");
    let third = r.transfers[2].agent_call_control_id.clone();
    wait_event(&hooks, &third, "call.hangup").await;
    assert_eq!(
        payload_of(&hooks, &third, "call.hangup")["hangup_cause"],
        "originator_cancel"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn transfers_the_spec_refuses_are_422() {
    let (sim, hooks) = setup().await;
    let parked = sim
        .ring_inbound(
            CALLER,
            FROM,
            Caller::Human {
                speech_wav: tone_wav(100),
                hang_up_after: None,
            },
        )
        .expect("rings");
    wait_event(&hooks, &parked, "call.initiated").await;
    let (s, v) = action(&sim, &parked, "transfer", json!({"to": AGENT})).await;
    assert_eq!(
        (s, codes(&v)),
        (422, vec!["90034".to_string()]),
        "answer first"
    );
    let ccid = answered_inbound(&sim, &hooks, json!({})).await;
    let cases = [
        (json!({}), "10004", "/to"),
        (json!({"to": ""}), "10004", "/to"),
        (json!({"to": "0655556666"}), "10016", "/to"),
        (json!({"to": 33655556666u64}), "10015", "/to"),
        (json!({"to": AGENT, "from": "+0123"}), "10016", "/from"),
        (
            json!({"to": AGENT, "timeout_secs": 601}),
            "10033",
            "/timeout_secs",
        ),
        (
            json!({"to": AGENT, "time_limit_secs": 10}),
            "10033",
            "/time_limit_secs",
        ),
        (
            json!({"to": AGENT, "client_state": "???"}),
            "10015",
            "/client_state",
        ),
        (
            json!({"to": AGENT, "target_leg_client_state": "???"}),
            "10015",
            "/target_leg_client_state",
        ),
        (
            json!({"to": AGENT, "audio_url": "https://a/b.wav", "media_name": "ring"}),
            "10015",
            "/audio_url",
        ),
        (
            json!({"to": AGENT, "media_encryption": "srtp"}),
            "10032",
            "/media_encryption",
        ),
        (
            json!({"to": AGENT, "sip_transport_protocol": "SCTP"}),
            "10032",
            "/sip_transport_protocol",
        ),
        (
            json!({"to": AGENT, "webhook_url": "not a url"}),
            "10015",
            "/webhook_url",
        ),
        (
            json!({"to": AGENT, "send_digits_on_answer": "12x"}),
            "10015",
            "/send_digits_on_answer",
        ),
    ];
    for (body, code, pointer) in cases {
        let (s, v) = action(&sim, &ccid, "transfer", body.clone()).await;
        assert_eq!(
            (s, codes(&v), pointers(&v)),
            (422, vec![code.to_string()], vec![pointer.to_string()]),
            "{body}"
        );
    }
    let (s, v) = action(&sim, "v3:unknown", "transfer", json!({"to": AGENT})).await;
    assert_eq!((s, codes(&v)), (422, vec!["90015".to_string()]));
    let r = sim.recorded();
    assert!(r.transfers.is_empty(), "nothing was placed");
    // A SIP URI and a number with post-answer digits are valid destinations.
    let (s, v) = action(
        &sim,
        &ccid,
        "transfer",
        json!({"to": "+33655556666,12w3", "command_id": "t-9"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = action(
        &sim,
        &ccid,
        "transfer",
        json!({"to": "+33655556666,12w3", "command_id": "t-9"}),
    )
    .await;
    assert_eq!(s, 200, "duplicate command_id: ignored");
    let r = sim.recorded();
    assert_eq!(r.transfers.len(), 1, "the duplicate placed nothing");
    assert_eq!(r.transfers[0].to, AGENT);
    sim.shutdown().await;
}
