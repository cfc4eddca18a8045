//! SIGTERM to the bridge *process* (its `main`), as an orchestrator sends it: readiness turns
//! false while the port stays open, a new stream is refused, and a live call goes on until it
//! ends — or, past `MEDIA_BRIDGE_DRAIN_SECS`, is cut — and then the process exits by itself.

mod common;

use common::*;
use sim_openai::Trigger;
use sim_telnyx::Callee;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn health_status(addr: std::net::SocketAddr) -> Option<u16> {
    let mut sock = tokio::net::TcpStream::connect(addr).await.ok()?;
    sock.write_all(b"GET /health HTTP/1.1\r\nHost: bridge\r\n\r\n")
        .await
        .ok()?;
    let mut head = vec![0u8; 64];
    let n = sock.read(&mut head).await.ok()?;
    String::from_utf8_lossy(&head[..n])
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_call_survives_sigterm_until_it_ends_then_the_process_exits() {
    let mut h = Harness::start_process(
        scenario(vec![say(Trigger::SessionStart, "Bonjour Marie.")], 30),
        &[("MEDIA_BRIDGE_DRAIN_SECS", "60")],
    )
    .await;
    assert_eq!(health_status(h.bridge_addr).await, Some(200));
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(4)),
    };
    let call = h.call("+33612345681", callee, "Marie", "web").await;
    h.wait_openai(|r| r.sessions.len() == 1, Duration::from_secs(10))
        .await;
    let signalled = Instant::now();
    let exited = h.sigterm();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        health_status(h.bridge_addr).await,
        Some(503),
        "not ready while draining, but still listening"
    );
    assert!(!exited.is_finished(), "the live call keeps the process up");
    let status = tokio::time::timeout(Duration::from_secs(30), exited)
        .await
        .expect("the process exits once the call has ended")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let waited = signalled.elapsed();
    let rec = h.telnyx.recorded();
    let stream = rec.stream_for(&call.call_control_id).unwrap();
    assert!(
        stream.stop_sent,
        "the call ended by itself (callee hang-up)"
    );
    assert!(
        waited >= Duration::from_secs(2),
        "the process waited for the call ({waited:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_drain_deadline_the_call_is_cut_and_the_process_exits() {
    let mut h = Harness::start_process(
        scenario(vec![say(Trigger::SessionStart, "Bonjour Marie.")], 30),
        &[("MEDIA_BRIDGE_DRAIN_SECS", "2")],
    )
    .await;
    let callee = Callee::Human {
        speech_wav: callee_wav(100, 0, 0),
        hang_up_after: Some(Duration::from_secs(60)),
    };
    let call = h.call("+33612345682", callee, "Marie", "web").await;
    h.wait_openai(|r| r.sessions.len() == 1, Duration::from_secs(10))
        .await;
    let signalled = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(20), h.sigterm())
        .await
        .expect("the process exits after the drain deadline and the hard stop")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let waited = signalled.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "cut at the deadline, not before ({waited:?})"
    );
    let rec = h.telnyx.recorded();
    let stream = rec.stream_for(&call.call_control_id).unwrap();
    assert!(
        !stream.stop_sent,
        "the callee never hung up: the bridge cut the call"
    );
}
