//! The bridge shell end to end against the real simulators and a real Redis: sim-telnyx dials
//! and streams a scripted callee, the bridge joins it to a sim-openai Realtime session.

mod common;

use callway_audio::level::rms_dbfs;
use callway_core::call_context::TimelineKind;
use common::*;
use media_bridge::Tuning;
use sim_openai::Trigger;
use sim_telnyx::Callee;
use std::time::Duration;

const SUMMARY_A: &str =
    "Marie gère un cabinet dentaire : une cinquantaine d'appels par jour, surtout le matin.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_talks_to_the_agent_with_the_web_summary_and_the_call_ends_cleanly() {
    let steps = vec![
        say(
            Trigger::SessionStart,
            "Bonjour Marie, ici l'agent IA de Callway.",
        ),
        sim_openai::Step {
            on: Trigger::UserTurn,
            expect_transcript: Some("Oui, c'est bien moi.".into()),
            say: Some("Parfait, au revoir !".into()),
            say_wav: None,
            call: Some(end_call()),
        },
    ];
    let h = Harness::start(scenario(steps, 30), |_| {}, Tuning::default()).await;
    let to = "+33612345678";
    let callee = Callee::Human {
        speech_wav: callee_wav(3_000, 1_200, 200),
        hang_up_after: None,
    };
    let call = h.call(to, callee, "Marie", SUMMARY_A).await;
    let id = call.call_control_id.clone();

    // The agent hangs up after its goodbye (end_call): Telnyx gets the hangup command.
    let rec = h
        .telnyx
        .wait_for(
            |r| {
                r.commands
                    .iter()
                    .any(|c| c.call_control_id == id && c.command == "hangup")
            },
            Duration::from_secs(25),
        )
        .await
        .expect("the bridge hangs up");
    let hangup = rec.commands.iter().find(|c| c.command == "hangup").unwrap();
    assert_eq!(hangup.status, 200);
    let rec = h
        .telnyx
        .wait_for(
            |r| r.stream_for(&id).is_some_and(|s| s.ended_at_ms.is_some()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let stream = rec.stream_for(&id).unwrap();
    assert_eq!(
        stream.auth_token_sent.as_deref(),
        Some(call.ctx.stream_secret.as_str())
    );
    // The callee heard the agent: real, non-silent audio, in ≥ 20 ms messages.
    assert!(
        stream.played_pcm.len() > 8_000,
        "at least 1 s of agent audio"
    );
    assert!(
        rms_dbfs(&stream.played_pcm) > -35.0,
        "agent audio is not silence"
    );
    assert_eq!(stream.undersized_media, 0);
    assert!(!stream.marks_received.is_empty(), "marks track playback");

    // OpenAI: one session, closed after the hang-up, configured for the phone.
    let o = h
        .wait_openai(
            |r| r.sessions.len() == 1 && r.sessions[0].client_closed_with.is_some(),
            Duration::from_secs(10),
        )
        .await;
    let s = &o.sessions[0];
    let instr = instructions(s);
    assert!(
        !instr.contains(SUMMARY_A),
        "the visitor's words are not in the instructions"
    );
    assert_eq!(
        history(s),
        format!("assistant: Bonjour, je suis l'agent IA de Callway.\nuser: {SUMMARY_A}"),
        "the web conversation is replayed, in order, as conversation items"
    );
    assert!(
        instr.contains("<<<PRÉNOM\nMarie\nPRÉNOM>>>"),
        "the first name is in a delimited data block"
    );
    assert_eq!(s.session["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(s.session["audio"]["output"]["format"]["type"], "audio/pcmu");
    assert_eq!(
        s.session["audio"]["input"]["turn_detection"]["type"],
        "server_vad"
    );
    assert!(
        s.audio_in_ms > 2_000,
        "the callee's audio reached OpenAI: {}",
        s.audio_in_ms
    );
    assert!(s.audio_in_max_dbfs.unwrap_or(f64::NEG_INFINITY) > -30.0);
    assert_eq!(s.lines_said.len(), 2, "{:?}", s.lines_said);
    assert_eq!(s.tool_calls[0].name, "end_call");
    assert!(s.errors_sent.is_empty(), "{:?}", s.errors_sent);
    assert_eq!(s.client_closed_with, Some(1000));

    // The page's timeline got both sides of the conversation, as text.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let t = h.contexts.timeline(&call.call_ref).await.unwrap();
        let agent = t.iter().any(|e| {
            e.kind == TimelineKind::Agent
                && e.text.as_deref() == Some("Bonjour Marie, ici l'agent IA de Callway.")
        });
        let callee = t.iter().any(|e| {
            e.kind == TimelineKind::Callee && e.text.as_deref() == Some("Oui, c'est bien moi.")
        });
        if agent && callee {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "timeline: {t:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_clears_telnyx_and_truncates_at_what_was_played() {
    let long = "Bonjour Marie, ici l'agent IA de Callway, comme convenu sur notre site web. \
        Je vous rappelle au sujet de votre cabinet et de vos appels du matin, avez-vous un moment ?";
    let steps = vec![
        say(Trigger::SessionStart, long),
        // After the interruption: hang up without more audio, so everything played is the greeting.
        sim_openai::Step {
            on: Trigger::UserTurn,
            expect_transcript: None,
            say: None,
            say_wav: None,
            call: Some(end_call()),
        },
    ];
    let h = Harness::start(scenario(steps, 60), |_| {}, Tuning::default()).await;
    let callee = Callee::Human {
        speech_wav: callee_wav(2_000, 1_200, 200),
        hang_up_after: Some(Duration::from_secs(15)),
    };
    let call = h.call("+33612345679", callee, "Marie", SUMMARY_A).await;
    let id = call.call_control_id.clone();
    h.telnyx
        .wait_for(
            |r| {
                r.stream_for(&id)
                    .is_some_and(|s| !s.clears_at_ms.is_empty())
            },
            Duration::from_secs(15),
        )
        .await
        .expect("clear sent on barge-in");
    let o = h
        .wait_openai(
            |r| {
                r.sessions.first().is_some_and(|s| {
                    s.client_events
                        .iter()
                        .any(|e| e["type"] == "conversation.item.truncate")
                })
            },
            Duration::from_secs(5),
        )
        .await;
    let rec = h
        .telnyx
        .wait_for(
            |r| r.stream_for(&id).is_some_and(|s| s.ended_at_ms.is_some()),
            Duration::from_secs(20),
        )
        .await
        .expect("the stream ends");
    let stream = rec.stream_for(&id).unwrap();
    let s = &o.sessions[0];
    let truncate = s
        .client_events
        .iter()
        .find(|e| e["type"] == "conversation.item.truncate")
        .unwrap();
    let end_ms = truncate["audio_end_ms"].as_u64().unwrap();
    let played_ms = stream.played_pcm.len() as u64 / 8;
    let generated_ms = s.audio_out_ms;
    assert!(end_ms > 0, "some of the greeting was heard");
    assert!(
        end_ms <= played_ms,
        "truncated at {end_ms} ms but only {played_ms} ms were played"
    );
    assert!(
        played_ms < generated_ms,
        "the clear dropped queued audio ({played_ms} of {generated_ms} ms played)"
    );
    assert!(stream.cleared_bytes > 0);
    assert!(
        s.errors_sent.is_empty(),
        "the truncate was valid: {:?}",
        s.errors_sent
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_dropping_mid_call_makes_the_bridge_hang_up() {
    let steps = vec![say(
        Trigger::SessionStart,
        "Bonjour Marie, ici l'agent IA de Callway.",
    )];
    let h = Harness::start(
        scenario(steps, 30),
        |c| c.ws_fail_after = Some(Duration::from_millis(1_500)),
        Tuning::default(),
    )
    .await;
    let callee = Callee::Human {
        speech_wav: callee_wav(500, 500, 0),
        hang_up_after: Some(Duration::from_secs(30)),
    };
    let call = h.call("+33612345670", callee, "Marie", SUMMARY_A).await;
    let id = call.call_control_id.clone();
    let rec = h
        .telnyx
        .wait_for(
            |r| {
                r.commands
                    .iter()
                    .any(|c| c.call_control_id == id && c.command == "hangup")
                    && r.stream_for(&id).is_some_and(|s| s.ended_at_ms.is_some())
            },
            Duration::from_secs(15),
        )
        .await
        .expect("hang-up after the OpenAI socket dropped");
    let stream = rec.stream_for(&id).unwrap();
    assert!(
        stream.stop_sent,
        "Telnyx ended the stream because of the hang-up"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callee_hanging_up_mid_sentence_closes_the_openai_session() {
    let long = "Bonjour Marie, ici l'agent IA de Callway, comme convenu sur notre site web, \
        je vous appelle pour reprendre notre conversation sur vos appels du matin.";
    let h = Harness::start(
        scenario(vec![say(Trigger::SessionStart, long)], 60),
        |_| {},
        Tuning::default(),
    )
    .await;
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_millis(2_500)),
    };
    let call = h.call("+33612345671", callee, "Marie", SUMMARY_A).await;
    let o = h
        .wait_openai(
            |r| {
                r.sessions
                    .first()
                    .is_some_and(|s| s.client_closed_with.is_some())
            },
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        o.sessions[0].client_closed_with,
        Some(1000),
        "closed normally by the bridge"
    );
    let rec = h.telnyx.recorded();
    assert!(
        !rec.commands
            .iter()
            .any(|c| c.call_control_id == call.call_control_id && c.command == "hangup"),
        "no hang-up command for a call the callee already ended"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_at_once_do_not_cross_talk() {
    // Call A's agent says a short line, call B's a long one (the scenario applies per session).
    let short = "Bonjour Marie, ici Callway.";
    let long =
        "Bonjour Paul, ici l'agent IA de Callway, je vous rappelle comme convenu sur notre site, \
        pour parler de votre boulangerie et de vos commandes par téléphone.";
    let h = Harness::start(
        scenario(vec![say(Trigger::SessionStart, short)], 30),
        |_| {},
        Tuning::default(),
    )
    .await;
    let summary_b = "Paul tient une boulangerie et prend ses commandes par téléphone.";
    // A speaks (loud), B stays silent.
    let a = h
        .call(
            "+33612345672",
            Callee::Human {
                speech_wav: callee_wav(2_500, 1_500, 0),
                hang_up_after: Some(Duration::from_secs(7)),
            },
            "Marie",
            SUMMARY_A,
        )
        .await;
    h.wait_openai(|r| r.sessions.len() == 1, Duration::from_secs(5))
        .await;
    h.openai
        .set_scenario(scenario(vec![say(Trigger::SessionStart, long)], 30));
    let b = h
        .call(
            "+33612345673",
            Callee::Human {
                speech_wav: callee_wav(100, 0, 0),
                hang_up_after: Some(Duration::from_secs(7)),
            },
            "Paul",
            summary_b,
        )
        .await;
    let rec = h
        .telnyx
        .wait_for(
            |r| {
                [&a.call_control_id, &b.call_control_id]
                    .iter()
                    .all(|id| r.stream_for(id).is_some_and(|s| s.ended_at_ms.is_some()))
            },
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    let o = h
        .wait_openai(
            |r| r.sessions.len() == 2 && r.sessions.iter().all(|s| s.client_closed_with.is_some()),
            Duration::from_secs(10),
        )
        .await;
    let sa = o
        .sessions
        .iter()
        .find(|s| history(s).contains(SUMMARY_A))
        .expect("session A");
    let sb = o
        .sessions
        .iter()
        .find(|s| history(s).contains(summary_b))
        .expect("session B");
    assert!(!history(sa).contains(summary_b) && !history(sb).contains(SUMMARY_A));
    assert!(instructions(sb).contains("Paul"));
    // Each session heard only its callee.
    assert!(sa.audio_in_max_dbfs.unwrap_or(f64::NEG_INFINITY) > -30.0);
    assert!(
        sb.audio_in_ms > 1_000,
        "B's callee stream reached B's session"
    );
    assert!(
        sb.audio_in_max_dbfs.unwrap_or(f64::NEG_INFINITY) < -60.0,
        "{:?}",
        sb.audio_in_max_dbfs
    );
    // Each callee heard only its agent: played ms match that session's generated ms.
    let played = |id: &str| rec.stream_for(id).unwrap().played_pcm.len() as u64 / 8;
    let (pa, pb) = (played(&a.call_control_id), played(&b.call_control_id));
    assert!(
        pa.abs_diff(sa.audio_out_ms) <= 100,
        "A played {pa} ms, its agent said {} ms",
        sa.audio_out_ms
    );
    assert!(
        pb.abs_diff(sb.audio_out_ms) <= 100,
        "B played {pb} ms, its agent said {} ms",
        sb.audio_out_ms
    );
    assert!(pb > pa + 1_000);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_calls_and_lets_the_running_call_finish() {
    let mut h = Harness::start(
        scenario(vec![say(Trigger::SessionStart, "Bonjour Marie.")], 30),
        |_| {},
        Tuning::default(),
    )
    .await;
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(3)),
    };
    let call = h.call("+33612345674", callee, "Marie", SUMMARY_A).await;
    h.wait_openai(|r| r.sessions.len() == 1, Duration::from_secs(5))
        .await;
    let finished = h.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Draining: still listening (a TCP liveness check passes), but not ready, and no new call.
    assert_eq!(
        status_of(h.bridge_addr, HEALTH).await,
        503,
        "readiness turns false first"
    );
    assert_eq!(
        status_of(h.bridge_addr, UPGRADE).await,
        503,
        "a new media stream is refused while draining"
    );
    assert!(!finished.is_finished(), "the running call is not cut");
    tokio::time::timeout(Duration::from_secs(10), finished)
        .await
        .expect("the server returns once the call has ended")
        .unwrap();
    let rec = h.telnyx.recorded();
    let stream = rec.stream_for(&call.call_control_id).unwrap();
    assert!(
        stream.stop_sent,
        "the call ended by itself (callee hang-up)"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_openai_connect_does_not_hold_the_telnyx_stream() {
    let steps = vec![say(Trigger::SessionStart, "Bonjour Marie, ici Callway.")];
    let h = Harness::start(scenario(steps, 30), |_| {}, Tuning::default()).await;
    // The OpenAI upgrade answers only after 1.5 s.
    h.openai
        .fail_next(sim_openai::Failure::Stall(Duration::from_millis(1_500)));
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(5)),
    };
    let call = h.call("+33612345676", callee, "Marie", SUMMARY_A).await;
    let id = call.call_control_id.clone();
    let rec = h
        .telnyx
        .wait_for(
            |r| {
                r.stream_for(&id)
                    .is_some_and(|s| s.connected_at_ms.is_some())
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let connected = rec.stream_for(&id).unwrap().connected_at_ms.unwrap();
    let rec = h
        .telnyx
        .wait_for(
            |r| {
                r.stream_for(&id)
                    .is_some_and(|s| !s.app_media_at_ms.is_empty())
            },
            Duration::from_secs(8),
        )
        .await
        .expect("the agent speaks once OpenAI is up");
    let first_audio = rec.stream_for(&id).unwrap().app_media_at_ms[0];
    assert!(
        first_audio >= connected + 1_300,
        "audio only after the stalled connect: connected {connected} ms, first audio {first_audio} ms"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_refusal_at_connect_hangs_the_call_up() {
    let steps = vec![say(Trigger::SessionStart, "Bonjour.")];
    let h = Harness::start(scenario(steps, 30), |_| {}, Tuning::default()).await;
    h.openai.fail_next(sim_openai::Failure::Unauthorized);
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(20)),
    };
    let call = h.call("+33612345677", callee, "Marie", SUMMARY_A).await;
    let id = call.call_control_id.clone();
    h.telnyx
        .wait_for(
            |r| {
                r.commands
                    .iter()
                    .any(|c| c.call_control_id == id && c.command == "hangup")
            },
            Duration::from_secs(10),
        )
        .await
        .expect("hang-up when OpenAI refuses the session");
    let o = h.openai.recorded();
    assert!(o.sessions.is_empty(), "the upgrade was refused (401)");
    assert!(o.http_errors.iter().any(|e| e.status == 401));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_still_running_at_the_drain_deadline_are_cut() {
    let tuning = Tuning {
        drain_deadline: Duration::from_millis(500),
        ..Tuning::default()
    };
    let steps = vec![say(Trigger::SessionStart, "Bonjour Marie.")];
    let mut h = Harness::start(scenario(steps, 30), |_| {}, tuning).await;
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(30)),
    };
    let call = h.call("+33612345678", callee, "Marie", SUMMARY_A).await;
    h.wait_openai(|r| r.sessions.len() == 1, Duration::from_secs(5))
        .await;
    let server = h.begin_shutdown();
    tokio::time::timeout(Duration::from_secs(8), server)
        .await
        .expect("the server returns after the drain deadline")
        .unwrap();
    let id = call.call_control_id.clone();
    let rec = h
        .telnyx
        .wait_for(
            |r| r.stream_for(&id).is_some_and(|s| s.ended_at_ms.is_some()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(
        rec.stream_for(&id).unwrap().closed_by_app,
        "the bridge closed the stream"
    );
    h.wait_openai(
        |r| r.sessions[0].client_closed_with == Some(1000),
        Duration::from_secs(5),
    )
    .await;
    h.shutdown().await;
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: bridge\r\n\r\n";
/// A media stream upgrade (any token: the drain refusal comes first).
const UPGRADE: &[u8] = b"GET /media/telnyx?token=st_unknown HTTP/1.1\r\nHost: bridge\r\n\
Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// The status code the bridge answers `request` with.
async fn status_of(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the bridge still listens while it drains");
    sock.write_all(request).await.unwrap();
    let mut head = vec![0u8; 64];
    let n = sock.read(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[..n])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
