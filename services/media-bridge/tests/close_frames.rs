//! Each of the bridge's WebSockets ends with exactly one Close frame from the bridge, and
//! nothing after it (RFC 6455 §5.5.1), whichever side closes first. The taps of the harness read
//! the frames on the peer's side of the wire (common/ws_tap.rs); `Harness::shutdown` checks
//! every socket of every test, these name the four ways a call ends.

mod common;

use common::ws_tap::TapConn;
use common::*;
use media_bridge::Tuning;
use sim_openai::Trigger;
use sim_telnyx::Callee;
use std::time::Duration;

const SUMMARY: &str = "Marie gère un cabinet dentaire.";

/// The upgraded sockets of a tap once the bridge has closed them all.
async fn upgraded(tap: &common::ws_tap::WsTap) -> Vec<TapConn> {
    tap.finished(Duration::from_secs(15))
        .await
        .into_iter()
        .filter(|c| c.upgraded)
        .collect()
}

/// One socket, one Close frame from the bridge with one of `codes`, nothing after it.
fn one_close(side: &str, conns: &[TapConn], codes: &[u16]) {
    assert_eq!(conns.len(), 1, "{side}: one socket: {conns:?}");
    let c = &conns[0];
    assert_eq!(c.close_frames, 1, "{side}: one Close frame: {c:?}");
    assert_eq!(c.frames_after_close, 0, "{side}: nothing after it: {c:?}");
    assert!(
        c.close_codes.len() == 1 && codes.contains(&c.close_codes[0]),
        "{side}: close status one of {codes:?}: {c:?}"
    );
}

/// Waits for the call's Telnyx stream to end (the simulator records when it closed).
async fn stream_ended(h: &Harness, id: &str) {
    h.telnyx
        .wait_for(
            |r| r.stream_for(id).is_some_and(|s| s.ended_at_ms.is_some()),
            Duration::from_secs(20),
        )
        .await
        .expect("the stream ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callee_hangs_up_telnyx_closes_first_and_the_bridge_closes_openai() {
    let h = Harness::start(
        scenario(vec![say(Trigger::SessionStart, "Bonjour Marie.")], 30),
        |_| {},
        Tuning::default(),
    )
    .await;
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_millis(2_000)),
    };
    let call = h.call("+33612349001", callee, "Marie", SUMMARY).await;
    stream_ended(&h, &call.call_control_id).await;
    // Telnyx sent `stop` and its Close: the bridge answered it once with the same code.
    one_close("Telnyx", &upgraded(&h.telnyx_tap).await, &[1000]);
    one_close("OpenAI", &upgraded(&h.openai_tap).await, &[1000]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_ends_the_call_the_bridge_hangs_up_and_telnyx_ends_the_stream() {
    let steps = vec![sim_openai::Step {
        on: Trigger::SessionStart,
        expect_transcript: None,
        say: Some("Au revoir !".into()),
        say_wav: None,
        call: Some(end_call()),
    }];
    let h = Harness::start(scenario(steps, 30), |_| {}, Tuning::default()).await;
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: None,
    };
    let call = h.call("+33612349002", callee, "Marie", SUMMARY).await;
    stream_ended(&h, &call.call_control_id).await;
    let rec = h.telnyx.recorded();
    assert!(rec
        .commands
        .iter()
        .any(|c| c.call_control_id == call.call_control_id && c.command == "hangup"));
    one_close("Telnyx", &upgraded(&h.telnyx_tap).await, &[1000]);
    one_close("OpenAI", &upgraded(&h.openai_tap).await, &[1000]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_vanishing_without_a_close_still_gets_one_close_and_the_call_one_too() {
    let h = Harness::start(
        scenario(vec![say(Trigger::SessionStart, "Bonjour Marie.")], 30),
        |c| c.ws_fail_after = Some(Duration::from_millis(1_500)),
        Tuning::default(),
    )
    .await;
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(30)),
    };
    let call = h.call("+33612349003", callee, "Marie", SUMMARY).await;
    stream_ended(&h, &call.call_control_id).await;
    one_close("Telnyx", &upgraded(&h.telnyx_tap).await, &[1000]);
    // The connection just ended (EOF): one Close saying so, sent whether or not anyone reads it.
    one_close("OpenAI", &upgraded(&h.openai_tap).await, &[1011]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_closing_the_session_first_gets_its_code_echoed_once() {
    let h = Harness::start(
        scenario(vec![say(Trigger::SessionStart, "Bonjour Marie.")], 30),
        |c| c.max_session = Duration::from_secs(2),
        Tuning::default(),
    )
    .await;
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(30)),
    };
    let call = h.call("+33612349004", callee, "Marie", SUMMARY).await;
    stream_ended(&h, &call.call_control_id).await;
    let o = h.openai.recorded();
    assert_eq!(o.sessions.len(), 1);
    one_close("Telnyx", &upgraded(&h.telnyx_tap).await, &[1000]);
    // The session expired: OpenAI said so (`error` event), then closed with 1001. The bridge
    // answers 1001 once — or, when the core asks to close on the error event before the Close
    // frame is read, closes with 1000 first and does not answer the 1001.
    one_close("OpenAI", &upgraded(&h.openai_tap).await, &[1001, 1000]);
    h.shutdown().await;
}
