//! The media stream client against a test WebSocket server playing "the app".

mod support;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use callway_audio::{level, mulaw};
use serde_json::{json, Value};
use sim_telnyx::StreamOutcome;
use std::time::Duration;
use support::*;

const WAIT: Duration = Duration::from_secs(5);

fn tone(ms: usize) -> Vec<u8> {
    let samples: Vec<i16> = (0..ms * 8)
        .map(|i| (8000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin()) as i16)
        .collect();
    mulaw::encode(&samples)
}

fn payload(v: &Value) -> Vec<u8> {
    STANDARD
        .decode(v["media"]["payload"].as_str().expect("payload"))
        .expect("base64")
}

#[tokio::test]
async fn stream_start_pacing_marks_clear_errors_and_stop() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    let mut app = AppWsServer::start(Some("tok-123")).await;
    let (s, v) = dial(
        &sim,
        dial_body(json!({
            "client_state": "eyJjYWxsX2lkIjoiYWJjIn0=",
            "stream_url": format!("{}?call=abc", app.url),
            "stream_track": "inbound_track",
            "stream_bidirectional_mode": "rtp",
            "stream_bidirectional_codec": "PCMU",
            "stream_bidirectional_target_legs": "self",
            "stream_auth_token": "tok-123",
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();

    let (headers, uri, mut ws) = app.accept(WAIT).await;
    assert_eq!(
        headers
            .get("x-telnyx-streaming-auth-token")
            .and_then(|h| h.to_str().ok()),
        Some("tok-123")
    );
    assert!(uri.ends_with("/telnyx/media?call=abc"), "{uri}");

    let connected = next_json(&mut ws, WAIT).await.expect("connected");
    assert_eq!(connected["event"], "connected");
    assert_eq!(connected["version"], "1.0.0");
    let start = next_json(&mut ws, WAIT).await.expect("start");
    assert_eq!(start["event"], "start");
    let stream_id = start["stream_id"]
        .as_str()
        .expect("top-level stream_id")
        .to_string();
    assert_eq!(start["sequence_number"], "1");
    assert_eq!(start["start"]["call_control_id"], ccid.as_str());
    assert_eq!(start["start"]["client_state"], "eyJjYWxsX2lkIjoiYWJjIn0=");
    assert_eq!(
        start["start"]["media_format"],
        json!({"encoding": "PCMU", "sample_rate": 8000, "channels": 1})
    );
    assert!(start["start"].get("stream_id").is_none());

    // 25 inbound frames: 160 bytes each, string counters, 20 ms apart in real time.
    // Time is measured in the stream's own clock below (inbound frames are 20 ms each), not the
    // wall clock, so a busy machine cannot make these checks flaky.
    let mut frames = Vec::new();
    while frames.len() < 25 {
        let f = next_json(&mut ws, WAIT).await.expect("media");
        assert_eq!(f["event"], "media", "{f}");
        frames.push(f);
    }
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(f["stream_id"], stream_id.as_str());
        assert_eq!(f["media"]["track"], "inbound");
        assert_eq!(payload(f).len(), 160);
        assert!(f["sequence_number"].is_string() && f["media"]["chunk"].is_string());
        if i > 0 {
            let seq = |f: &Value| {
                f["sequence_number"]
                    .as_str()
                    .and_then(|s| s.parse::<u64>().ok())
                    .expect("seq")
            };
            assert_eq!(seq(f), seq(&frames[i - 1]) + 1);
        }
    }
    // The default callee says a 1 s tone: the first frames are far from silence.
    assert!(level::pcmu_dbfs(&payload(&frames[5])) > -20.0);

    // Idle mark: echoed at once (within a couple of inbound frames).
    send_text(&mut ws, r#"{"event":"mark","mark":{"name":"idle"}}"#).await;
    let (m, skipped) = next_event(&mut ws, "mark", WAIT).await;
    assert_eq!(m["mark"]["name"], "idle");
    assert_eq!(m["stream_id"], stream_id.as_str());
    assert!(
        skipped.len() <= 3,
        "{} frames before the idle mark",
        skipped.len()
    );

    // 600 ms of audio then a mark: echoed once it has played at real-time pace.
    let first = tone(600);
    send_text(&mut ws, &media_frame(&first)).await;
    send_text(&mut ws, r#"{"event":"mark","mark":{"name":"m1"}}"#).await;
    let (m, skipped) = next_event(&mut ws, "mark", WAIT).await;
    assert_eq!(m["mark"]["name"], "m1");
    // 600 ms of playout = 30 inbound periods; not echoed before its audio has played.
    assert!(
        skipped.len() >= 25,
        "mark after {} inbound frames",
        skipped.len()
    );
    assert!(
        skipped.iter().all(|f| f["event"] == "media"),
        "inbound media keeps flowing"
    );

    // 2 s of audio and a mark, then clear after ~200 ms: the mark comes back at once, audio dropped.
    send_text(&mut ws, &media_frame(&tone(2000))).await;
    send_text(&mut ws, r#"{"event":"mark","mark":{"name":"m2"}}"#).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    send_text(&mut ws, r#"{"event":"clear"}"#).await;
    let (m, skipped) = next_event(&mut ws, "mark", WAIT).await;
    assert_eq!(m["mark"]["name"], "m2");
    // Without the clear the mark would wait for ~1.8 s more of audio (~90 frames).
    assert!(
        skipped.len() < 30,
        "clear returns queued marks promptly ({} frames later)",
        skipped.len()
    );

    // Bad frames get error frames with the documented codes.
    let mut errors = Vec::new();
    for bad in [
        "not json",
        r#"{"event":"dance"}"#,
        r#"{"event":"media","media":{"payload":"%%%%"}}"#,
        r#"{"event":"mark"}"#,
    ] {
        send_text(&mut ws, bad).await;
        let (e, _) = next_event(&mut ws, "error", WAIT).await;
        errors.push(e["payload"]["code"].as_u64().expect("integer code"));
        assert_eq!(e["stream_id"], stream_id.as_str());
    }
    assert_eq!(errors, vec![100_003, 100_003, 100_004, 100_003]);
    send_binary(&mut ws, &[0xFF; 160]).await;
    let (e, _) = next_event(&mut ws, "error", WAIT).await;
    assert_eq!(e["payload"]["title"], "malformed_frame");
    let oversize = vec![0xFFu8; 8000 * 31];
    send_text(&mut ws, &media_frame(&oversize)).await;
    let (e, _) = next_event(&mut ws, "error", WAIT).await;
    assert_eq!(e["payload"]["code"], 100_003);

    // A short (< 20 ms) message is played but counted.
    send_text(&mut ws, &media_frame(&[0xFF; 80])).await;

    // The app hangs up over REST: stop frame, then streaming.stopped and call.hangup.
    let (s, _) = action(&sim, &ccid, "hangup", json!({})).await;
    assert_eq!(s, 200);
    let (stop, _) = next_event(&mut ws, "stop", WAIT).await;
    assert_eq!(stop["stop"]["call_control_id"], ccid.as_str());
    assert_eq!(stop["stream_id"], stream_id.as_str());
    assert!(
        next_json(&mut ws, WAIT).await.is_none(),
        "socket closed after stop"
    );

    let got = hooks.wait_for_event("call.hangup", WAIT).await;
    let types: Vec<&str> = got
        .iter()
        .filter(|h| h.accepted())
        .map(|h| h.event_type())
        .collect();
    assert_eq!(
        types,
        vec![
            "call.initiated",
            "call.answered",
            "streaming.started",
            "streaming.stopped",
            "call.hangup"
        ]
    );
    let hangup = got
        .iter()
        .find(|h| h.event_type() == "call.hangup")
        .expect("hangup");
    assert_eq!(hangup.payload()["hangup_cause"], "normal_clearing");
    assert_eq!(hangup.payload()["hangup_source"], "caller");

    let r = sim.recorded();
    let st = r.stream_for(&ccid).expect("stream recorded");
    assert_eq!(st.outcome, StreamOutcome::Accepted);
    assert_eq!(st.auth_token_sent.as_deref(), Some("tok-123"));
    assert!(st.stop_sent && !st.closed_by_app);
    assert_eq!(st.app_media_messages, 3, "the oversize one was refused");
    assert_eq!(st.app_pcm.len(), 600 * 8 + 2000 * 8 + 80);
    assert_eq!(st.app_pcm[..first.len()], mulaw::decode(&first)[..]);
    assert_eq!(st.undersized_media, 1);
    assert_eq!(st.marks_received, vec!["idle", "m1", "m2"]);
    let by_clear: Vec<_> = st
        .marks_echoed
        .iter()
        .map(|m| (m.name.as_str(), m.by_clear))
        .collect();
    assert_eq!(by_clear, vec![("idle", false), ("m1", false), ("m2", true)]);
    assert_eq!(st.clears_at_ms.len(), 1);
    // ~200 ms of the 2 s played before the clear; the rest was dropped.
    let played_ms = st.played_pcm.len() / 8;
    assert!(
        (600 + 120..=600 + 400).contains(&(played_ms - 10)),
        "played {played_ms} ms"
    );
    assert!(
        st.cleared_bytes >= 1500 * 8,
        "cleared {} bytes",
        st.cleared_bytes
    );
    assert_eq!(st.errors_sent.len(), 6);
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_stream_gives_streaming_failed_and_the_call_goes_on() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    let app = AppWsServer::start(Some("the-right-token")).await;
    let (_, v) = dial(
        &sim,
        dial_body(
            json!({"stream_url": app.url, "stream_auth_token": "a-wrong-token",
                          "stream_bidirectional_mode": "rtp"}),
        ),
    )
    .await;
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let got = hooks.wait_for_event("streaming.failed", WAIT).await;
    let failed = got
        .iter()
        .find(|h| h.event_type() == "streaming.failed")
        .expect("failed");
    assert_eq!(failed.payload()["failure_reason"], "connection_failed");
    assert_eq!(failed.payload()["stream_type"], "websocket");
    assert_eq!(
        failed.payload()["stream_params"]["stream_url"],
        app.url.as_str()
    );
    let r = sim
        .wait_for(
            |r| {
                r.stream_for(&ccid)
                    .is_some_and(|s| s.outcome != StreamOutcome::Connecting)
            },
            WAIT,
        )
        .await;
    assert_eq!(
        r.expect("outcome")
            .stream_for(&ccid)
            .expect("stream")
            .outcome,
        StreamOutcome::Refused { status: 401 }
    );

    // The call is still up: the app may hang up normally, and no streaming.stopped is sent.
    let (s, _) = action(&sim, &ccid, "hangup", json!({})).await;
    assert_eq!(s, 200);
    let got = hooks.wait_for_event("call.hangup", WAIT).await;
    assert!(!got
        .iter()
        .any(|h| h.event_type() == "streaming.stopped" || h.event_type() == "streaming.started"));
    sim.shutdown().await;
}

#[tokio::test]
async fn app_closing_the_socket_gives_streaming_stopped_and_mp3_mode_is_not_played() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    hooks.trust(&sim.public_key_base64());
    let mut app = AppWsServer::start(None).await;
    // No stream_bidirectional_mode: Telnyx's default is mp3, raw PCMU sent back is not played.
    let (_, v) = dial(&sim, dial_body(json!({"stream_url": app.url}))).await;
    let ccid = v["data"]["call_control_id"]
        .as_str()
        .expect("ccid")
        .to_string();
    let (headers, _, mut ws) = app.accept(WAIT).await;
    assert!(headers.get("x-telnyx-streaming-auth-token").is_none());
    next_event(&mut ws, "start", WAIT).await;
    send_text(&mut ws, &media_frame(&tone(200))).await;
    send_text(&mut ws, &media_frame(&tone(200))).await;
    let (e, _) = next_event(&mut ws, "error", WAIT).await;
    assert_eq!(
        e["payload"]["code"], 100_005,
        "mp3 mode: at most one message per second"
    );
    ws.write_frame(fastwebsockets::Frame::close(1000, b"bye"))
        .await
        .expect("close");
    hooks.wait_for_event("streaming.stopped", WAIT).await;
    let r = sim.recorded();
    let st = r.stream_for(&ccid).expect("stream");
    assert!(st.closed_by_app);
    assert!(st.played_pcm.is_empty() && st.app_pcm.is_empty());
    // The call itself is still alive.
    let (s, _) = action(&sim, &ccid, "hangup", json!({})).await;
    assert_eq!(s, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn both_tracks_sends_what_was_played_on_the_outbound_track() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    let mut app = AppWsServer::start(None).await;
    dial(
        &sim,
        dial_body(json!({"stream_url": app.url, "stream_track": "both_tracks", "stream_bidirectional_mode": "rtp",
                         "stream_bidirectional_target_legs": "both"})),
    )
    .await;
    let (_, _, mut ws) = app.accept(WAIT).await;
    next_event(&mut ws, "start", WAIT).await;
    send_text(&mut ws, &media_frame(&tone(400))).await;
    let mut loud_outbound = 0;
    let mut inbound = 0;
    for _ in 0..60 {
        let f = next_json(&mut ws, WAIT).await.expect("frame");
        match f["media"]["track"].as_str() {
            Some("outbound") if level::pcmu_dbfs(&payload(&f)) > -30.0 => loud_outbound += 1,
            Some("inbound") => inbound += 1,
            _ => {}
        }
    }
    assert!(inbound >= 25);
    assert!(
        (15..=21).contains(&loud_outbound),
        "our 400 ms echoed on the outbound track: {loud_outbound}"
    );
    sim.shutdown().await;
}

/// `stream_bidirectional_target_legs` decides who hears the app. The call is one outbound leg:
/// `self` and `both` reach the callee; `opposite` — the spec's default — names the other leg of
/// a bridge, which does not exist here, so the app's audio plays to nobody.
#[tokio::test]
async fn app_audio_is_heard_only_on_the_legs_the_dial_names() {
    let hooks = WebhookReceiver::start().await;
    let sim = start_sim(&hooks.url).await;
    for legs in [Some("self"), Some("both"), Some("opposite"), None] {
        let mut app = AppWsServer::start(None).await;
        let mut extra = json!({"stream_url": app.url, "stream_track": "both_tracks",
                               "stream_bidirectional_mode": "rtp"});
        if let Some(l) = legs {
            extra["stream_bidirectional_target_legs"] = json!(l);
        }
        let (s, v) = dial(&sim, dial_body(extra)).await;
        assert_eq!(s, 200, "{v}");
        let ccid = v["data"]["call_control_id"]
            .as_str()
            .expect("ccid")
            .to_string();
        let (_, _, mut ws) = app.accept(WAIT).await;
        next_event(&mut ws, "start", WAIT).await;
        send_text(&mut ws, &media_frame(&tone(400))).await;
        // The mark comes back once the 400 ms have been played out, heard or not.
        send_text(&mut ws, r#"{"event":"mark","mark":{"name":"done"}}"#).await;
        let (_, before) = next_event(&mut ws, "mark", WAIT).await;
        let loud_outbound = before
            .iter()
            .filter(|f| f["media"]["track"] == "outbound" && level::pcmu_dbfs(&payload(f)) > -30.0)
            .count();
        let st = sim.recorded().stream_for(&ccid).expect("stream").clone();
        let heard = matches!(legs, Some("self") | Some("both"));
        assert_eq!(st.target_legs, legs.unwrap_or("opposite"));
        if heard {
            assert!(
                st.played_pcm.len() >= 380 * 8,
                "{legs:?}: {} samples heard",
                st.played_pcm.len()
            );
            assert_eq!(st.unheard_app_bytes, 0, "{legs:?}");
            assert!(
                loud_outbound >= 15,
                "{legs:?}: {loud_outbound} loud outbound frames"
            );
        } else {
            assert!(
                st.played_pcm.is_empty(),
                "{legs:?}: nobody should hear the app"
            );
            assert!(
                st.unheard_app_bytes >= 380 * 8,
                "{legs:?}: {}",
                st.unheard_app_bytes
            );
            assert_eq!(
                loud_outbound, 0,
                "{legs:?}: the callee's leg carries silence"
            );
        }
        let (s, _) = action(&sim, &ccid, "hangup", json!({})).await;
        assert_eq!(s, 200);
    }
    sim.shutdown().await;
}
