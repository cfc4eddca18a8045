//! The phone leg's control plane against the Telnyx simulator: tools-svc dials, the simulator
//! plays the callee and sends signed webhooks to webhook-svc, which records the outcome on the
//! lead, handles voicemail, and cleans the context. Context and de-duplication live in Redis.

mod common;

use callway_core::lead::CallbackStatus;
use callway_core::session_token::WebSessionId;
use common::*;
use serde_json::{json, Value};
use sim_telnyx::{Callee, WebhookFaults};
use std::time::Duration;
use webhook_svc::VoicemailAction;
#[tokio::test]
async fn voicemail_gets_the_short_message_then_a_hangup_and_the_outcome_is_recorded() {
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    w.sim
        .script_callee(CALLEE, Callee::Voicemail { greeting_wav: None })
        .unwrap();
    let (lead, call) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::Voicemail);
    assert!(
        w.context_gone(&call).await,
        "the context must be cleaned at hang-up"
    );
    let rec = w.sim.recorded();
    let commands: Vec<&str> = rec.commands.iter().map(|c| c.command.as_str()).collect();
    assert!(commands.contains(&"speak"), "{commands:?}");
    assert!(commands.contains(&"hangup"), "{commands:?}");
    let speak = rec.commands.iter().find(|c| c.command == "speak").unwrap();
    // Accepted by a simulator that refuses what Telnyx refuses (basic + fr-FR is refused).
    assert_eq!(speak.status, 200, "{:?}", speak.error_codes);
    let body = speak.body.as_ref().unwrap();
    assert_eq!(body["service_level"], "premium");
    assert_eq!(body["voice"], callway_core::telnyx::SPEAK_VOICE);
    assert_eq!(body["language"], "fr-FR");
    assert_eq!(body["payload"], webhook_svc::VOICEMAIL_MESSAGE);
    // Said after the beep (the machine records from there), hung up once it was said.
    let ccid = &speak.call_control_id;
    let events = rec.events_for(ccid);
    let at = |e: &str| {
        rec.webhooks
            .iter()
            .find(|h| &h.call_control_id == ccid && h.event_type == e)
            .map(|h| h.at_ms)
            .unwrap_or_else(|| panic!("{e} missing: {events:?}"))
    };
    assert!(speak.at_ms >= at("call.machine.premium.greeting.ended"));
    let hangup = rec.commands.iter().find(|c| c.command == "hangup").unwrap();
    assert!(hangup.at_ms >= at("call.speak.ended"));
    assert_eq!(
        w.sim.recorded().event(ccid, "call.speak.ended").unwrap()["data"]["payload"]["status"],
        "completed"
    );
    assert!(
        rec.webhooks.iter().all(|h| h.acknowledged()),
        "every genuine webhook answered 2xx"
    );
}

#[tokio::test]
async fn the_page_that_asked_reads_the_phone_leg_timeline_and_no_one_else_does() {
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    w.sim
        .script_callee(CALLEE, Callee::Voicemail { greeting_wav: None })
        .unwrap();
    let t = w.tokens.mint(
        &WebSessionId::generate(),
        chrono::Utc::now().timestamp() + 600,
    );
    let (lead, call) = w.request_callback_as(&t).await;
    w.final_status(lead).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/calls/{}/events", w.tools, call.as_str());
    let mut body = Value::Null;
    for _ in 0..100 {
        body = http
            .get(&url)
            .header("authorization", format!("Bearer {t}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["ended"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let kinds: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["dialing", "ringing", "answered", "voicemail", "ended"],
        "{body}"
    );
    assert_eq!(body["events"][4]["text"], "voicemail");
    let stranger = w.tokens.mint(
        &WebSessionId::generate(),
        chrono::Utc::now().timestamp() + 600,
    );
    let resp = http
        .get(&url)
        .header("authorization", format!("Bearer {stranger}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 401);
}

#[tokio::test]
async fn voicemail_can_be_hung_up_on_directly() {
    let w = world(WebhookFaults::default(), VoicemailAction::HangUp).await;
    w.sim
        .script_callee(CALLEE, Callee::Voicemail { greeting_wav: None })
        .unwrap();
    let (lead, _) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::Voicemail);
    assert!(!w
        .sim
        .recorded()
        .commands
        .iter()
        .any(|c| c.command == "speak"));
}

#[tokio::test]
async fn no_answer_and_busy_are_recorded_as_such() {
    for (callee, want) in [
        (Callee::NoAnswer, CallbackStatus::NoAnswer),
        (Callee::Busy, CallbackStatus::Busy),
    ] {
        let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
        w.sim.script_callee(CALLEE, callee).unwrap();
        let (lead, call) = w.request_callback().await;
        assert_eq!(w.final_status(lead).await, want);
        assert!(w.context_gone(&call).await);
    }
}

#[tokio::test]
async fn a_refused_media_stream_hangs_up_and_the_callback_is_failed() {
    let w = world_with_media(WebhookFaults::default(), VoicemailAction::Message, false).await;
    let (lead, _) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::Failed);
    assert!(w
        .sim
        .recorded()
        .commands
        .iter()
        .any(|c| c.command == "hangup"));
}

#[tokio::test]
async fn forged_stale_and_duplicate_webhooks_are_refused_or_handled_once() {
    let faults = WebhookFaults {
        duplicate: true,
        stale_copy_age: Some(Duration::from_secs(400)),
        forged_copy: true,
        ..Default::default()
    };
    let w = world(faults, VoicemailAction::Message).await;
    w.sim
        .script_callee(CALLEE, Callee::Voicemail { greeting_wav: None })
        .unwrap();
    let (lead, _) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::Voicemail);
    let rec = w.sim.recorded();
    let forged: Vec<_> = rec.webhooks.iter().filter(|h| h.fault.is_some()).collect();
    assert!(!forged.is_empty());
    for h in &forged {
        let dup = format!("{:?}", h.fault).to_lowercase().contains("dup");
        if dup {
            assert_eq!(h.status, Some(200), "a duplicate is acknowledged: {h:?}");
        } else {
            assert_eq!(
                h.status,
                Some(401),
                "forged/stale copies are refused: {h:?}"
            );
        }
    }
    // The voicemail message was spoken once, despite every webhook arriving twice.
    assert_eq!(
        rec.commands
            .iter()
            .filter(|c| c.command == "speak" && !c.duplicate)
            .count(),
        1
    );
}

#[tokio::test]
async fn unsigned_forged_and_unknown_events_over_plain_http() {
    use base64::Engine;
    use ring::signature::Ed25519KeyPair;
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    let url = format!("http://127.0.0.1:{}/api/telnyx/webhooks", w.hook_port);
    let http = reqwest::Client::new();
    let body = json!({"data":{"id":"evt-1","event_type":"call.recording.saved","record_type":"event","payload":{}},"meta":{"attempt":1}}).to_string();
    let unsigned = http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    // The simulator signs with TEST_SEED here: sign like Telnyx does.
    let kp = Ed25519KeyPair::from_seed_unchecked(&TEST_SEED).unwrap();
    let sign = |ts: i64, body: &str| {
        base64::engine::general_purpose::STANDARD
            .encode(kp.sign(format!("{ts}|{body}").as_bytes()).as_ref())
    };
    let now = chrono::Utc::now().timestamp();
    let ok = http
        .post(&url)
        .header("telnyx-timestamp", now.to_string())
        .header("telnyx-signature-ed25519", sign(now, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200, "unknown events are acknowledged");
    let tampered = body.replace("evt-1", "evt-2");
    let forged = http
        .post(&url)
        .header("telnyx-timestamp", now.to_string())
        .header("telnyx-signature-ed25519", sign(now, &body))
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    let future = now + 301;
    let early = http
        .post(&url)
        .header("telnyx-timestamp", future.to_string())
        .header("telnyx-signature-ed25519", sign(future, &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        early.status().as_u16(),
        401,
        "timestamps too far in the future are refused too"
    );
    let big = "x".repeat(300 * 1024);
    let huge = http
        .post(&url)
        .header("telnyx-timestamp", now.to_string())
        .header("telnyx-signature-ed25519", sign(now, &big))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status().as_u16(), 413);
}

#[tokio::test]
async fn an_unreadable_call_context_gets_a_503_and_the_retry_is_handled() {
    use base64::Engine;
    use callway_core::call_context::CallRef;
    use ring::signature::Ed25519KeyPair;
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    let url = format!("http://127.0.0.1:{}/api/telnyx/webhooks", w.hook_port);
    let call_ref = CallRef::parse("cx_unreadable").unwrap();
    // Something the store cannot read where the context should be (a store fault).
    assert!(w
        .contexts
        .claim("callway:ctx:cx_unreadable", Duration::from_secs(60))
        .await
        .unwrap());
    let body = json!({"data":{"id":"evt-ctx","event_type":"call.answered","record_type":"event",
        "payload":{"call_control_id":"v3:abc","client_state": call_ref.to_client_state(callway_core::lead::LeadId::new())}},
        "meta":{"attempt":1}})
    .to_string();
    let kp = Ed25519KeyPair::from_seed_unchecked(&TEST_SEED).unwrap();
    let send = || {
        let now = chrono::Utc::now().timestamp();
        let sig = base64::engine::general_purpose::STANDARD
            .encode(kp.sign(format!("{now}|{body}").as_bytes()).as_ref());
        reqwest::Client::new()
            .post(&url)
            .header("telnyx-timestamp", now.to_string())
            .header("telnyx-signature-ed25519", sig)
            .body(body.clone())
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(
        first.status().as_u16(),
        503,
        "no 200 for an event nobody could act on"
    );
    // Telnyx retries the same event once the store is readable: it is not taken for a duplicate.
    w.contexts
        .delete_key("callway:ctx:cx_unreadable")
        .await
        .unwrap();
    let retry = send().await.unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    let status: serde_json::Value = retry.json().await.unwrap();
    // Handled (not taken for a duplicate); the call has no context any more, so nothing to do.
    assert_eq!(status["status"], "ignored", "{status}");
}

fn answering(verdict: sim_telnyx::AmdVerdict, beep_after: Option<Duration>) -> Callee {
    Callee::Answering {
        audio_wav: None,
        verdict,
        beep_after,
        hang_up_after: Some(Duration::from_millis(1500)),
    }
}

/// The simulator's recording once the last call's `call.hangup` is in it: a status stored when
/// we decide to hang up comes before Telnyx's event of the hang-up itself.
async fn after_hangup(w: &World) -> sim_telnyx::Recording {
    w.sim
        .wait_for(
            |r| {
                r.last_call_control_id()
                    .is_some_and(|c| r.event(&c, "call.hangup").is_some())
            },
            Duration::from_secs(10),
        )
        .await
        .expect("the call's hang-up event")
}

fn commands(w: &World) -> Vec<(String, u16)> {
    w.sim
        .recorded()
        .commands
        .iter()
        .map(|c| (c.command.clone(), c.status))
        .collect()
}

/// The beep before the verdict: `greeting.ended` is the only AMD webhook. The agent (its media
/// stream) is cut, the message is spoken, the call is hung up and the lead ends `voicemail`,
/// not `completed`.
#[tokio::test]
async fn a_beep_before_the_verdict_is_a_voicemail_not_a_completed_call() {
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    // Timing::fast decides at 150 ms; this machine beeps at 50 ms.
    w.sim
        .script_callee(
            CALLEE,
            answering(
                sim_telnyx::AmdVerdict::Machine,
                Some(Duration::from_millis(50)),
            ),
        )
        .unwrap();
    let (lead, call) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::Voicemail);
    assert!(w.context_gone(&call).await);
    let rec = w.sim.recorded();
    let ccid = rec.last_call_control_id().unwrap();
    let events = rec.events_for(&ccid);
    assert!(
        !events.iter().any(|e| e.contains("detection.ended")),
        "greeting-only path: {events:?}"
    );
    let done = commands(&w);
    assert!(
        done.contains(&("streaming_stop".into(), 200)),
        "the agent is cut: {done:?}"
    );
    assert!(done.contains(&("speak".into(), 200)), "{done:?}");
    let hangups = rec
        .commands
        .iter()
        .filter(|c| c.command == "hangup" && c.status == 200);
    assert_eq!(hangups.count(), 1, "{done:?}");
    let stream = rec.stream_for(&ccid).unwrap();
    assert!(
        stream.stop_sent,
        "the media stream was stopped before the call ended"
    );
}

/// A `speak` Telnyx refuses ends the call at once, instead of leaving it on the recorder.
#[tokio::test]
async fn a_refused_voicemail_message_hangs_up_at_once() {
    for fault in [
        sim_telnyx::CommandFault::Refused,
        sim_telnyx::CommandFault::Unavailable,
    ] {
        let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
        // A machine that beeps at 50 ms and waits 1.5 s before hanging up by itself.
        w.sim
            .script_callee(
                CALLEE,
                answering(
                    sim_telnyx::AmdVerdict::Machine,
                    Some(Duration::from_millis(50)),
                ),
            )
            .unwrap();
        // Every attempt of the client (it retries a 503 with the same command_id) is refused.
        w.sim.fail_next_commands("speak", fault, 10);
        let (lead, _) = w.request_callback().await;
        assert_eq!(w.final_status(lead).await, CallbackStatus::Voicemail);
        let rec = after_hangup(&w).await;
        let speak_refused = rec
            .commands
            .iter()
            .filter(|c| c.command == "speak")
            .all(|c| c.status >= 400);
        assert!(speak_refused, "{:?}", commands(&w));
        let ccid = rec.last_call_control_id().unwrap();
        assert!(!rec.events_for(&ccid).contains(&"call.speak.started".into()));
        // We hung up (source caller), the machine did not.
        let hangup = rec.event(&ccid, "call.hangup").unwrap();
        assert_eq!(
            hangup["data"]["payload"]["hangup_source"],
            "caller",
            "{fault:?}: {:?}",
            commands(&w)
        );
    }
}

/// A machine whose beep never comes: Telnyx's `no_beep_detected` ends the wait, the message is
/// said and the call hung up.
#[tokio::test]
async fn a_machine_without_a_beep_gets_the_message_when_the_beep_wait_ends() {
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    w.sim
        .script_callee(CALLEE, answering(sim_telnyx::AmdVerdict::Machine, None))
        .unwrap();
    let (lead, _) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::Voicemail);
    let rec = after_hangup(&w).await;
    let ccid = rec.last_call_control_id().unwrap();
    let g = rec
        .event(&ccid, "call.machine.premium.greeting.ended")
        .unwrap();
    assert_eq!(g["data"]["payload"]["result"], "no_beep_detected");
    let speak = rec.commands.iter().find(|c| c.command == "speak").unwrap();
    assert_eq!(speak.status, 200);
    assert_eq!(
        rec.event(&ccid, "call.hangup").unwrap()["data"]["payload"]["hangup_source"],
        "caller"
    );
}

/// `silence` and `not_sure`: someone (or something) picked up and AMD cannot say a machine; the
/// agent keeps the line — no hang-up, no message, the stream is not stopped — and a call the
/// callee ends is `completed`.
#[tokio::test]
async fn silence_and_not_sure_leave_the_agent_on_the_line() {
    for verdict in [
        sim_telnyx::AmdVerdict::Silence,
        sim_telnyx::AmdVerdict::NotSure,
    ] {
        let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
        w.sim
            .script_callee(CALLEE, answering(verdict, None))
            .unwrap();
        let (lead, call) = w.request_callback().await;
        assert_eq!(w.final_status(lead).await, CallbackStatus::Completed);
        assert!(w.context_gone(&call).await);
        assert!(commands(&w).is_empty(), "{verdict:?}: {:?}", commands(&w));
        let rec = w.sim.recorded();
        let ccid = rec.last_call_control_id().unwrap();
        assert_eq!(
            rec.event(&ccid, "call.hangup").unwrap()["data"]["payload"]["hangup_source"],
            "callee"
        );
    }
}

/// `fax_detected`: nobody to talk to, no message to leave: hung up at once, lead `failed`.
#[tokio::test]
async fn a_fax_line_is_hung_up_at_once_and_the_callback_failed() {
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    w.sim
        .script_callee(CALLEE, answering(sim_telnyx::AmdVerdict::FaxDetected, None))
        .unwrap();
    let (lead, _) = w.request_callback().await;
    assert_eq!(w.final_status(lead).await, CallbackStatus::Failed);
    let done = commands(&w);
    assert_eq!(
        done,
        vec![("hangup".to_string(), 200)],
        "no message to a fax"
    );
    let rec = after_hangup(&w).await;
    let ccid = rec.last_call_control_id().unwrap();
    assert_eq!(
        rec.event(&ccid, "call.hangup").unwrap()["data"]["payload"]["hangup_source"],
        "caller"
    );
}

/// Each dial names who hears the agent: the callee's own leg.
#[tokio::test]
async fn the_dial_sends_the_agent_to_the_callees_leg() {
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    w.request_callback().await;
    let rec = w
        .sim
        .wait_for(
            |r| {
                r.last_call_control_id()
                    .is_some_and(|id| r.stream_for(&id).is_some())
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let body = rec.dials[0].body.as_ref().unwrap();
    assert_eq!(body["stream_bidirectional_target_legs"], "self");
    let ccid = rec.last_call_control_id().unwrap();
    assert_eq!(rec.stream_for(&ccid).unwrap().target_legs, "self");
}

/// `telnyx-timestamp: -9223372036854775808` used to overflow `now - ts` (a panic in debug
/// builds) before the signature was even checked: now it is a stale timestamp, 401.
#[tokio::test]
async fn extreme_timestamps_are_refused_not_a_panic() {
    use base64::Engine;
    use ring::signature::Ed25519KeyPair;
    let w = world(WebhookFaults::default(), VoicemailAction::Message).await;
    let url = format!("http://127.0.0.1:{}/api/telnyx/webhooks", w.hook_port);
    let kp = Ed25519KeyPair::from_seed_unchecked(&TEST_SEED).unwrap();
    let body =
        json!({"data":{"id":"evt-min","event_type":"call.answered","payload":{}}}).to_string();
    let http = reqwest::Client::new();
    for ts in [i64::MIN.to_string(), i64::MAX.to_string(), "-0".into()] {
        let sig = base64::engine::general_purpose::STANDARD
            .encode(kp.sign(format!("{ts}|{body}").as_bytes()).as_ref());
        let resp = http
            .post(&url)
            .header("telnyx-timestamp", &ts)
            .header("telnyx-signature-ed25519", sig)
            .body(body.clone())
            .send()
            .await
            .expect("the service answers");
        assert_eq!(resp.status().as_u16(), 401, "ts {ts}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "timestamp_out_of_window", "ts {ts}");
    }
    // Still serving.
    let now = chrono::Utc::now().timestamp();
    let sig = base64::engine::general_purpose::STANDARD
        .encode(kp.sign(format!("{now}|{body}").as_bytes()).as_ref());
    let ok = http
        .post(&url)
        .header("telnyx-timestamp", now.to_string())
        .header("telnyx-signature-ed25519", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
}
