//! Scripted callees produce the documented webhook sequences and hang-up causes.

mod support;

use serde_json::{json, Value};
use sim_telnyx::{AmdVerdict, Callee};
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(8);

async fn run_to_hangup(
    sim: &sim_telnyx::TelnyxSim,
    hooks: &WebhookReceiver,
    extra: Value,
) -> (Vec<String>, Value) {
    let (s, v) = dial(sim, dial_body(extra)).await;
    assert_eq!(s, 200, "{v}");
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let got = hooks
        .wait_until("call.hangup", WAIT, |h| {
            h.iter().any(|h| {
                h.accepted()
                    && h.event_type() == "call.hangup"
                    && h.payload()["call_control_id"] == ccid.as_str()
            })
        })
        .await;
    let mine: Vec<_> = got
        .iter()
        .filter(|h| h.accepted() && h.payload()["call_control_id"] == ccid.as_str())
        .collect();
    let types = mine.iter().map(|h| h.event_type().to_string()).collect();
    let hangup = mine
        .iter()
        .find(|h| h.event_type() == "call.hangup")
        .map(|h| h.payload().clone())
        .expect("hangup");
    (types, hangup)
}

async fn setup() -> (sim_telnyx::TelnyxSim, WebhookReceiver) {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    (sim, hooks)
}

#[tokio::test]
async fn human_with_premium_amd_who_hangs_up_mid_call() {
    let (sim, hooks) = setup().await;
    let mut app = AppWsServer::start(None).await;
    let wav = callway_audio::wav::to_bytes(&callway_audio::wav::Wav {
        sample_rate: 8000,
        samples: vec![1000; 4000],
    });
    sim.script_callee(
        TO,
        Callee::Human {
            speech_wav: wav,
            hang_up_after: Some(Duration::from_millis(600)),
        },
    )
    .expect("8 kHz WAV accepted");
    let dial_fut = run_to_hangup(
        &sim,
        &hooks,
        json!({"answering_machine_detection": "premium", "stream_url": app.url, "stream_bidirectional_mode": "rtp"}),
    );
    let app_side = async {
        let (_, _, mut ws) = app.accept(WAIT).await;
        let (stop, before) = next_event(&mut ws, "stop", WAIT).await;
        (stop, before)
    };
    let ((types, hangup), (stop, before)) = tokio::join!(dial_fut, app_side);
    assert_eq!(
        types,
        vec![
            "call.initiated",
            "call.answered",
            "streaming.started",
            "call.machine.premium.detection.ended",
            "streaming.stopped",
            "call.hangup"
        ]
    );
    assert_eq!(hangup["hangup_cause"], "normal_clearing");
    assert_eq!(hangup["hangup_source"], "callee");
    assert_eq!(hangup["sip_hangup_cause"], "200");
    assert!(
        hangup["end_time"].is_string()
            && hangup["call_quality_stats"]["inbound"]["packet_count"].is_string()
    );
    assert_eq!(stop["event"], "stop");
    let media = before.iter().filter(|f| f["event"] == "media").count();
    assert!(
        (20..=36).contains(&media),
        "~600 ms of frames before stop: {media}"
    );
    let r = sim.recorded();
    let ccid = r.last_call_control_id().expect("ccid");
    let amd = r
        .event(&ccid, "call.machine.premium.detection.ended")
        .expect("amd");
    assert_eq!(amd["data"]["payload"]["result"], "human_residence");
    sim.shutdown().await;
}

#[tokio::test]
async fn voicemail_with_premium_amd_gets_machine_then_beep() {
    let (sim, hooks) = setup().await;
    sim.script_callee(TO, Callee::Voicemail { greeting_wav: None })
        .expect("script");
    let (types, hangup) = run_to_hangup(
        &sim,
        &hooks,
        json!({"answering_machine_detection": "premium"}),
    )
    .await;
    assert_eq!(
        types,
        vec![
            "call.initiated",
            "call.answered",
            "call.machine.premium.detection.ended",
            "call.machine.premium.greeting.ended",
            "call.hangup"
        ]
    );
    assert_eq!(hangup["hangup_cause"], "normal_clearing");
    let r = sim.recorded();
    let ccid = r.last_call_control_id().expect("ccid");
    assert_eq!(
        r.event(&ccid, "call.machine.premium.detection.ended")
            .expect("d")["data"]["payload"]["result"],
        "machine"
    );
    assert_eq!(
        r.event(&ccid, "call.machine.premium.greeting.ended")
            .expect("g")["data"]["payload"]["result"],
        "beep_detected"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn voicemail_left_a_message_by_the_app_then_app_hangs_up() {
    let (sim, hooks) = setup().await;
    sim.script_callee(TO, Callee::Voicemail { greeting_wav: None })
        .expect("script");
    let (_, v) = dial(
        &sim,
        dial_body(json!({"answering_machine_detection": "detect_beep"})),
    )
    .await;
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    hooks
        .wait_for_event("call.machine.greeting.ended", WAIT)
        .await;
    let (s, _) = action(
        &sim,
        &ccid,
        "speak",
        json!({"payload": "Bonjour, ici Callway.", "voice": "female", "language": "fr-FR"}),
    )
    .await;
    assert_eq!(s, 200);
    hooks.wait_for_event("call.speak.ended", WAIT).await;
    let (s, _) = action(&sim, &ccid, "hangup", json!({})).await;
    assert_eq!(s, 200);
    let got = hooks.wait_for_event("call.hangup", WAIT).await;
    let types: Vec<_> = got
        .iter()
        .filter(|h| h.accepted())
        .map(|h| h.event_type())
        .collect();
    assert_eq!(
        types,
        vec![
            "call.initiated",
            "call.answered",
            "call.machine.detection.ended",
            "call.machine.greeting.ended",
            "call.speak.started",
            "call.speak.ended",
            "call.hangup"
        ]
    );
    let speak_end = got
        .iter()
        .find(|h| h.event_type() == "call.speak.ended")
        .expect("speak");
    assert_eq!(speak_end.payload()["status"], "completed");
    let hangup = got
        .iter()
        .find(|h| h.event_type() == "call.hangup")
        .expect("hangup");
    assert_eq!(hangup.payload()["hangup_source"], "caller");
    sim.shutdown().await;
}

#[tokio::test]
async fn no_answer_busy_rejected_and_cancel() {
    let (sim, hooks) = setup().await;
    sim.script_callee("+33611111111", Callee::NoAnswer)
        .expect("script");
    sim.script_callee("+33622222222", Callee::Busy)
        .expect("script");
    sim.script_callee("+33633333333", Callee::Rejected)
        .expect("script");

    let (types, h) = run_to_hangup(&sim, &hooks, json!({"to": "+33611111111"})).await;
    assert_eq!(types, vec!["call.initiated", "call.hangup"]);
    assert_eq!(h["hangup_cause"], "timeout");

    let (_, h) = run_to_hangup(
        &sim,
        &hooks,
        json!({"to": "+33611111111", "retry_on_timeout": false}),
    )
    .await;
    assert_eq!(h["hangup_cause"], "no_answer");

    let (types, h) = run_to_hangup(&sim, &hooks, json!({"to": "+33622222222"})).await;
    assert_eq!(types, vec!["call.initiated", "call.hangup"]);
    assert_eq!(
        (h["hangup_cause"].as_str(), h["sip_hangup_cause"].as_str()),
        (Some("user_busy"), Some("486"))
    );
    assert_eq!(h["hangup_source"], "callee");

    let (_, h) = run_to_hangup(&sim, &hooks, json!({"to": "+33633333333"})).await;
    assert_eq!(
        (h["hangup_cause"].as_str(), h["sip_hangup_cause"].as_str()),
        (Some("call_rejected"), Some("603"))
    );

    // The app cancels while it rings.
    let (_, v) = dial(&sim, dial_body(json!({"to": "+33611111111"}))).await;
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let (s, _) = action(&sim, &ccid, "hangup", json!({})).await;
    assert_eq!(s, 200);
    let r = sim
        .wait_for(
            |r| r.events_for(&ccid).contains(&"call.hangup".to_string()),
            WAIT,
        )
        .await
        .expect("hangup");
    let h = r.event(&ccid, "call.hangup").expect("hangup");
    assert_eq!(h["data"]["payload"]["hangup_cause"], "originator_cancel");
    assert_eq!(r.events_for(&ccid), vec!["call.initiated", "call.hangup"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn time_limit_ends_the_call() {
    let hooks = WebhookReceiver::start().await;
    let mut cfg = sim_telnyx::SimConfig::new(KEY, CONN, vec![FROM.into()], hooks.url.clone());
    cfg.timing = sim_telnyx::Timing::fast();
    cfg.timing.time_limit = Some(Duration::from_millis(300));
    let sim = sim_telnyx::TelnyxSim::start(cfg).await.expect("sim");
    hooks.trust(&sim.public_key_base64());
    let (types, h) = run_to_hangup(&sim, &hooks, json!({})).await;
    assert_eq!(
        types,
        vec!["call.initiated", "call.answered", "call.hangup"]
    );
    assert_eq!(h["hangup_cause"], "time_limit");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wav_that_is_not_8khz_is_refused_when_scripted() {
    let (sim, _hooks) = setup().await;
    let wav = callway_audio::wav::to_bytes(&callway_audio::wav::Wav {
        sample_rate: 24_000,
        samples: vec![0; 100],
    });
    let err = sim
        .script_callee(
            TO,
            Callee::Human {
                speech_wav: wav,
                hang_up_after: None,
            },
        )
        .expect_err("24 kHz");
    assert!(err.to_string().contains("8000"), "{err}");
    sim.shutdown().await;
}

#[tokio::test]
async fn the_default_callee_script_applies_to_unscripted_numbers_only() {
    let (sim, hooks) = setup().await;
    sim.script_default_callee(Callee::Busy).expect("script");
    sim.script_callee("+33622222222", Callee::Rejected)
        .expect("script");
    let (_, h) = run_to_hangup(&sim, &hooks, json!({"to": "+33644444444"})).await;
    assert_eq!(
        h["hangup_cause"], "user_busy",
        "unscripted number: the default"
    );
    let (_, h) = run_to_hangup(&sim, &hooks, json!({"to": "+33622222222"})).await;
    assert_eq!(h["hangup_cause"], "call_rejected", "its own script wins");
    sim.shutdown().await;
}

fn answering(verdict: AmdVerdict, beep_after: Option<Duration>, hang_up_ms: u64) -> Callee {
    Callee::Answering {
        audio_wav: None,
        verdict,
        beep_after,
        hang_up_after: Some(Duration::from_millis(hang_up_ms)),
    }
}

/// Premium AMD emits each of the six results of `CallMachinePremiumDetectionEnded`; a machine
/// whose beep never comes also gets `greeting.ended` `no_beep_detected`.
#[tokio::test]
async fn premium_amd_reports_all_six_results() {
    let (sim, hooks) = setup().await;
    for (verdict, result) in [
        (AmdVerdict::HumanResidence, "human_residence"),
        (AmdVerdict::HumanBusiness, "human_business"),
        (AmdVerdict::Machine, "machine"),
        (AmdVerdict::Silence, "silence"),
        (AmdVerdict::FaxDetected, "fax_detected"),
        (AmdVerdict::NotSure, "not_sure"),
    ] {
        // Timing::fast: verdict at 150 ms, beep wait over at 600 ms, hang-up at 900 ms.
        sim.script_callee(TO, answering(verdict, None, 900))
            .expect("script");
        let (types, hangup) = run_to_hangup(
            &sim,
            &hooks,
            json!({"answering_machine_detection": "premium"}),
        )
        .await;
        let mut want = vec![
            "call.initiated",
            "call.answered",
            "call.machine.premium.detection.ended",
        ];
        if verdict == AmdVerdict::Machine {
            want.push("call.machine.premium.greeting.ended");
        }
        want.push("call.hangup");
        assert_eq!(types, want, "{result}");
        assert_eq!(hangup["hangup_source"], "callee");
        let r = sim.recorded();
        let ccid = r.last_call_control_id().expect("ccid");
        let got = r
            .event(&ccid, "call.machine.premium.detection.ended")
            .expect("verdict");
        assert_eq!(got["data"]["payload"]["result"], result);
        if verdict == AmdVerdict::Machine {
            let g = r
                .event(&ccid, "call.machine.premium.greeting.ended")
                .expect("greeting");
            assert_eq!(g["data"]["payload"]["result"], "no_beep_detected");
        }
    }
    sim.shutdown().await;
}

/// The beep before the verdict: `greeting.ended` is the only AMD webhook.
#[tokio::test]
async fn a_beep_before_the_verdict_sends_only_greeting_ended() {
    let (sim, hooks) = setup().await;
    // Timing::fast decides at 150 ms; this machine's greeting ends with a beep at 50 ms.
    sim.script_callee(
        TO,
        answering(AmdVerdict::Machine, Some(Duration::from_millis(50)), 700),
    )
    .expect("script");
    let (types, _) = run_to_hangup(
        &sim,
        &hooks,
        json!({"answering_machine_detection": "premium"}),
    )
    .await;
    assert_eq!(
        types,
        vec![
            "call.initiated",
            "call.answered",
            "call.machine.premium.greeting.ended",
            "call.hangup"
        ]
    );
    let r = sim.recorded();
    let ccid = r.last_call_control_id().expect("ccid");
    let g = r
        .event(&ccid, "call.machine.premium.greeting.ended")
        .expect("greeting");
    assert_eq!(g["data"]["payload"]["result"], "beep_detected");
    sim.shutdown().await;
}

/// At the default AMD timing (verdict 2.5 s after the answer) the built-in voicemail greeting
/// (1.5 s, then a 0.4 s beep) beeps first: the greeting-only path is what a plain voicemail
/// gives, not a corner case. The machine stays on past the verdict time, so a verdict that
/// should not exist would have been sent.
#[tokio::test]
async fn at_default_amd_timing_a_plain_voicemail_takes_the_greeting_only_path() {
    let hooks = WebhookReceiver::start().await;
    let mut cfg = sim_telnyx::SimConfig::new(KEY, CONN, vec![FROM.into()], hooks.url.clone());
    let timing = sim_telnyx::Timing {
        ring: Duration::from_millis(100),
        voicemail_hang_up_after: Duration::from_secs(1),
        ..Default::default()
    };
    assert_eq!(timing.amd_analysis, Duration::from_millis(2500));
    cfg.timing = timing;
    let sim = sim_telnyx::TelnyxSim::start(cfg).await.expect("sim");
    hooks.trust(&sim.public_key_base64());
    sim.script_callee(TO, Callee::Voicemail { greeting_wav: None })
        .expect("script");
    let (types, _) = run_to_hangup(
        &sim,
        &hooks,
        json!({"answering_machine_detection": "premium"}),
    )
    .await;
    assert_eq!(
        types,
        vec![
            "call.initiated",
            "call.answered",
            "call.machine.premium.greeting.ended",
            "call.hangup"
        ]
    );
    sim.shutdown().await;
}
