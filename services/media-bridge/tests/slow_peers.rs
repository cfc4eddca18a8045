//! Peers that stall or flood: sockets that never finish their request head (slowloris), bodies
//! that trickle in, too many half-open sockets from one address, and bogus upgrades while a
//! real call connects. The bridge must close what stalls within its header timeout, keep
//! answering meanwhile, and give the real call its slot and its token.
//!
//! The attacker connects from 127.0.0.2, the simulators and the checks from 127.0.0.1 (two
//! peers to the bridge's per-address limits). Waits are bounded well above the configured
//! timeouts; nothing asserts how fast a socket was closed, only that it was.

mod common;

use callway_testkit::slow_client::{self, Ended};
use common::*;
use media_bridge::Tuning;
use sim_openai::Trigger;
use sim_telnyx::{Callee, StreamOutcome};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const NEIGHBOUR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// Far above every timeout configured here: past it, the bridge held the socket.
const GIVE_UP: Duration = Duration::from_secs(30);

async fn harness(tuning: Tuning) -> Harness {
    Harness::start(
        scenario(vec![say(Trigger::SessionStart, "Bonjour Marie.")], 30),
        |_| {},
        tuning,
    )
    .await
}

/// `GET /health` from `from`: the status and the JSON report.
async fn health(h: &Harness, from: IpAddr) -> (u16, serde_json::Value) {
    let raw = "GET /health HTTP/1.1\r\nHost: bridge\r\n\r\n";
    let out = slow_client::request(from, h.bridge_addr, raw)
        .await
        .expect("health request");
    let status = out
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or_default())
}

/// Polls the health report until `pred` holds (bounded).
async fn until_health(h: &Harness, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + GIVE_UP;
    loop {
        let (_, v) = health(h, NEIGHBOUR).await;
        if pred(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never got there: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_sockets_are_closed_within_the_header_timeout_and_health_answers_meanwhile() {
    let h = harness(Tuning {
        header_timeout: Duration::from_secs(1),
        half_open_per_ip: 500,
        half_open_max: 500,
        ..Tuning::default()
    })
    .await;
    let slow: Vec<_> = (0..200)
        .map(|_| {
            slow_client::slow_head(
                ATTACKER,
                h.bridge_addr,
                "/health",
                Duration::from_millis(200),
                GIVE_UP,
            )
        })
        .collect();
    // While they trickle, the bridge still answers (and counts them).
    let during = until_health(&h, |v| v["half_open"].as_u64().unwrap_or(0) >= 100).await;
    assert_eq!(during["status"], "ok");
    for s in slow {
        let ended = s.await.unwrap();
        assert!(
            matches!(ended, Ended::Closed { .. }),
            "a slowloris socket was held open: {ended:?}"
        );
    }
    until_health(&h, |v| v["half_open"] == 0).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_gets_only_its_share_of_half_open_sockets() {
    let h = harness(Tuning {
        // Long enough that the first sockets are still half-open when the next ones come.
        header_timeout: Duration::from_secs(60),
        half_open_per_ip: 4,
        half_open_max: 100,
        ..Tuning::default()
    })
    .await;
    let held: Vec<_> = (0..4)
        .map(|_| {
            slow_client::slow_head(
                ATTACKER,
                h.bridge_addr,
                "/health",
                Duration::from_millis(500),
                GIVE_UP * 4,
            )
        })
        .collect();
    until_health(&h, |v| v["half_open"] == 4).await;
    // The fifth from the same address is closed before it could send anything.
    let fifth = slow_client::slow_head(
        ATTACKER,
        h.bridge_addr,
        "/health",
        Duration::from_millis(200),
        GIVE_UP,
    )
    .await
    .unwrap();
    assert_eq!(
        fifth,
        Ended::Closed {
            answer: String::new()
        }
    );
    // Another address is not affected.
    let (status, v) = health(&h, NEIGHBOUR).await;
    assert_eq!(status, 200, "{v}");
    // Once the attacker's sockets are gone, its address may connect again.
    for s in &held {
        s.abort();
    }
    until_health(&h, |v| v["half_open"] == 0).await;
    assert_eq!(health(&h, ATTACKER).await.0, 200);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_is_never_waited_for() {
    let h = harness(Tuning::default()).await;
    for path in ["/health", "/media/telnyx?token=st_x"] {
        let ended = slow_client::slow_body(
            ATTACKER,
            h.bridge_addr,
            path,
            &[],
            100_000,
            b"{",
            Duration::from_millis(200),
            GIVE_UP,
        )
        .await
        .unwrap();
        assert_eq!(ended.status(), Some(400), "{path}: {ended:?}");
    }
    h.shutdown().await;
}

/// Sends an upgrade for `token` with `secret` and returns the status (0: closed unanswered).
async fn bogus_upgrade(h: &Harness, token: &str, secret: &str) -> u16 {
    let raw = format!(
        "GET /media/telnyx?token={token} HTTP/1.1\r\nHost: bridge\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         x-telnyx-streaming-auth-token: {secret}\r\n\r\n"
    );
    match slow_client::request(ATTACKER, h.bridge_addr, &raw).await {
        Ok(out) => out
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default(),
        Err(_) => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_upgrades_take_no_call_slot_and_a_wrong_secret_does_not_burn_the_token() {
    // One call slot: a bogus socket holding it for even a moment would refuse the real call.
    let h = harness(Tuning {
        max_calls: 1,
        half_open_per_ip: 1_000,
        half_open_max: 1_000,
        ..Tuning::default()
    })
    .await;
    h.telnyx
        .script_callee(
            "+33612349101",
            Callee::Human {
                speech_wav: callee_wav(100, 0, 0),
                hang_up_after: Some(Duration::from_secs(3)),
            },
        )
        .unwrap();
    let (ctx, token) = h.context("Marie", "résumé").await;
    // Someone who saw the stream URL tries the real token with wrong secrets first.
    for _ in 0..5 {
        assert_eq!(bogus_upgrade(&h, &token, "ss_wrong").await, 403);
    }
    // Then a flood of unknown tokens and wrong secrets runs while Telnyx connects.
    let flood: Vec<_> = (0..8)
        .map(|i| {
            let (addr, token) = (h.bridge_addr, token.clone());
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for n in 0..40 {
                    let (t, s) = if (i + n) % 2 == 0 {
                        (format!("st_bogus{i}x{n}"), "ss_x".to_owned())
                    } else {
                        (token.clone(), format!("ss_wrong{n}"))
                    };
                    let raw = format!(
                        "GET /media/telnyx?token={t} HTTP/1.1\r\nHost: bridge\r\n\
                         Upgrade: websocket\r\nConnection: Upgrade\r\n\
                         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                         x-telnyx-streaming-auth-token: {s}\r\n\r\n"
                    );
                    let out = slow_client::request(ATTACKER, addr, &raw)
                        .await
                        .unwrap_or_default();
                    statuses.push(out.get(9..12).unwrap_or("000").to_owned());
                }
                statuses
            })
        })
        .collect();
    let id = h
        .dial("+33612349101", &ctx, &token, &ctx.stream_secret)
        .await;
    let rec = h
        .telnyx
        .wait_for(
            |r| {
                r.stream_for(&id)
                    .is_some_and(|s| s.outcome != StreamOutcome::Connecting)
            },
            GIVE_UP,
        )
        .await
        .unwrap();
    assert_eq!(
        rec.stream_for(&id).unwrap().outcome,
        StreamOutcome::Accepted,
        "the real Telnyx socket gets the call"
    );
    h.wait_openai(|r| r.sessions.len() == 1, GIVE_UP).await;
    for f in flood {
        let statuses = f.await.unwrap();
        assert!(
            statuses.iter().all(|s| s == "403"),
            "every bogus upgrade is refused as forbidden, none as busy: {statuses:?}"
        );
    }
    // The real token was used exactly once, by the real socket.
    assert_eq!(bogus_upgrade(&h, &token, &ctx.stream_secret).await, 403);
    h.shutdown().await;
}
