//! The media socket refuses what it must, before any OpenAI session is opened.

mod common;

use callway_core::call_context::AmdVerdict;
use common::*;
use media_bridge::Tuning;
use sim_openai::Trigger;
use sim_telnyx::{Callee, StreamOutcome};
use std::time::Duration;

fn quiet_callee() -> Callee {
    Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(3)),
    }
}

async fn harness() -> Harness {
    Harness::start(
        scenario(vec![say(Trigger::SessionStart, "Bonjour.")], 30),
        |_| {},
        Tuning::default(),
    )
    .await
}

async fn outcome(h: &Harness, id: &str) -> StreamOutcome {
    let rec = h
        .telnyx
        .wait_for(
            |r| {
                r.stream_for(id)
                    .is_some_and(|s| s.outcome != StreamOutcome::Connecting)
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    rec.stream_for(id).unwrap().outcome.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_token_is_refused_without_an_openai_session() {
    let h = harness().await;
    h.telnyx
        .script_callee("+33612340001", quiet_callee())
        .unwrap();
    let (ctx, _token) = h.context("Marie", "résumé").await;
    let id = h
        .dial(
            "+33612340001",
            &ctx,
            "st_0123456789abcdef",
            &ctx.stream_secret,
        )
        .await;
    assert_eq!(
        outcome(&h, &id).await,
        StreamOutcome::Refused { status: 403 }
    );
    assert!(h.openai.recorded().sessions.is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_token_is_refused_and_opens_no_second_session() {
    let h = harness().await;
    h.telnyx
        .script_callee("+33612340002", quiet_callee())
        .unwrap();
    let (ctx, token) = h.context("Marie", "résumé").await;
    let first = h
        .dial("+33612340002", &ctx, &token, &ctx.stream_secret)
        .await;
    assert_eq!(outcome(&h, &first).await, StreamOutcome::Accepted);
    h.wait_openai(|r| r.sessions.len() == 1, Duration::from_secs(5))
        .await;
    let second = h
        .dial("+33612340002", &ctx, &token, &ctx.stream_secret)
        .await;
    assert_eq!(
        outcome(&h, &second).await,
        StreamOutcome::Refused { status: 403 }
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.openai.recorded().sessions.len(), 1);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_stream_auth_token_is_refused() {
    let h = harness().await;
    h.telnyx
        .script_callee("+33612340003", quiet_callee())
        .unwrap();
    let (ctx, token) = h.context("Marie", "résumé").await;
    let id = h
        .dial("+33612340003", &ctx, &token, "ss_not_the_secret")
        .await;
    assert_eq!(
        outcome(&h, &id).await,
        StreamOutcome::Refused { status: 403 }
    );
    assert!(h.openai.recorded().sessions.is_empty());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_context_fails_closed_politely() {
    let h = harness().await;
    h.telnyx
        .script_callee(
            "+33612340004",
            Callee::Human {
                speech_wav: callee_wav(100, 0, 0),
                hang_up_after: None,
            },
        )
        .unwrap();
    let (ctx, token) = h.context("Marie", "résumé").await;
    h.contexts.remove(&ctx.call_ref).await.unwrap();
    let id = h
        .dial("+33612340004", &ctx, &token, &ctx.stream_secret)
        .await;
    let rec = h
        .telnyx
        .wait_for(
            |r| {
                r.commands
                    .iter()
                    .any(|c| c.call_control_id == id && c.command == "hangup")
            },
            Duration::from_secs(20),
        )
        .await
        .expect("the bridge hangs up");
    let cmds: Vec<&str> = rec
        .commands
        .iter()
        .filter(|c| c.call_control_id == id)
        .map(|c| c.command.as_str())
        .collect();
    assert_eq!(cmds, ["speak", "hangup"], "an apology, then the hang-up");
    let speak = rec.commands.iter().find(|c| c.command == "speak").unwrap();
    assert_eq!(
        speak.body.as_ref().unwrap()["payload"],
        media_bridge::shell::APOLOGY
    );
    assert!(
        h.openai.recorded().sessions.is_empty(),
        "no agent without a context"
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_the_store() {
    let h = harness().await;
    let body = http_get(&h.bridge_addr.to_string(), "/health").await;
    let v: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["redis"], true);
    assert_eq!(v["service"], "media-bridge");
    h.shutdown().await;
}

async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_bridge_answers_503_without_burning_the_token() {
    let tuning = Tuning {
        max_calls: 1,
        ..Tuning::default()
    };
    let h = Harness::start(
        scenario(vec![say(Trigger::SessionStart, "Bonjour.")], 30),
        |_| {},
        tuning,
    )
    .await;
    let long_callee = || Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(4)),
    };
    h.telnyx
        .script_callee("+33612340005", long_callee())
        .unwrap();
    h.telnyx
        .script_callee("+33612340006", long_callee())
        .unwrap();
    let (ctx1, token1) = h.context("Marie", "résumé").await;
    let first = h
        .dial("+33612340005", &ctx1, &token1, &ctx1.stream_secret)
        .await;
    assert_eq!(outcome(&h, &first).await, StreamOutcome::Accepted);
    let (ctx2, token2) = h.context("Paul", "résumé").await;
    let second = h
        .dial("+33612340006", &ctx2, &token2, &ctx2.stream_secret)
        .await;
    assert_eq!(
        outcome(&h, &second).await,
        StreamOutcome::Refused { status: 503 }
    );
    // The refused stream's token is still valid: Telnyx (or a retry) can use it later.
    assert!(h
        .contexts
        .redeem_stream_token(&token2)
        .await
        .unwrap()
        .is_some());
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answering_machine_gets_no_agent() {
    let h = harness().await;
    // AMD already decided before the stream connected: no OpenAI session at all.
    h.telnyx
        .script_callee("+33612340007", quiet_callee())
        .unwrap();
    let (ctx, token) = h.context("Marie", "résumé").await;
    h.contexts
        .set_amd(&ctx.call_ref, AmdVerdict::Machine)
        .await
        .unwrap();
    let id = h
        .dial("+33612340007", &ctx, &token, &ctx.stream_secret)
        .await;
    assert_eq!(outcome(&h, &id).await, StreamOutcome::Accepted);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(h.openai.recorded().sessions.is_empty());

    // AMD decides during the greeting: the greeting is cleared and OpenAI closed.
    h.telnyx
        .script_callee(
            "+33612340008",
            Callee::Human {
                speech_wav: callee_wav(100, 0, 0),
                hang_up_after: Some(Duration::from_secs(6)),
            },
        )
        .unwrap();
    let (ctx, token) = h.context("Marie", "résumé").await;
    let id = h
        .dial("+33612340008", &ctx, &token, &ctx.stream_secret)
        .await;
    assert_eq!(outcome(&h, &id).await, StreamOutcome::Accepted);
    h.wait_openai(|r| r.sessions.len() == 1, Duration::from_secs(5))
        .await;
    h.contexts
        .set_amd(&ctx.call_ref, AmdVerdict::Machine)
        .await
        .unwrap();
    h.telnyx
        .wait_for(
            |r| {
                r.stream_for(&id)
                    .is_some_and(|s| !s.clears_at_ms.is_empty())
            },
            Duration::from_secs(5),
        )
        .await
        .expect("clear on machine");
    h.wait_openai(
        |r| r.sessions[0].client_closed_with == Some(1000),
        Duration::from_secs(5),
    )
    .await;
    h.shutdown().await;
}
