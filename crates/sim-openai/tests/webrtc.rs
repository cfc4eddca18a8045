//! A WebRTC call driven by a second str0m peer playing the browser: SDP offer with an Opus track
//! and the `oai-events` data channel, ICE to the simulator's ICE-lite peer, DTLS/SRTP/SCTP, Opus
//! audio both ways.

mod common;

use common::rtc_client::Client;
use common::*;
use serde_json::json;
use sim_openai::{Scenario, Step, ToolCall, Trigger};
use std::time::Duration;
use str0m::change::SdpAnswer;

fn scenario() -> Scenario {
    Scenario {
        steps: vec![
            Step {
                on: Trigger::SessionStart,
                expect_transcript: None,
                say: Some("Bonjour, ici Callway.".into()),
                say_wav: None,
                call: None,
            },
            Step {
                on: Trigger::UserTurn,
                expect_transcript: Some("Rappelez-moi.".into()),
                say: Some("Je note.".into()),
                say_wav: None,
                call: Some(ToolCall {
                    name: "save_lead".into(),
                    arguments: json!({"first_name": "Marie", "phone": "0612345678", "consent": true}),
                }),
            },
            Step {
                on: Trigger::ToolOutput,
                expect_transcript: None,
                say: Some("Merci, au revoir.".into()),
                say_wav: None,
                call: None,
            },
        ],
        fallback_say: "Pardon ?".into(),
        ms_per_char: 50,
    }
}

#[tokio::test]
async fn webrtc_call_with_opus_audio_and_the_data_channel() {
    let sim = start(scenario()).await;
    let ek = mint(&sim, json!({"type": "realtime", "model": "gpt-realtime", "instructions": "Agent Callway.",
                               "tools": [save_lead_tool()],
                               "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}}}})).await;
    let (mut client, offer, pending) = Client::offer().await;
    let auth = format!("Bearer {ek}");
    let r = http(
        sim.addr(),
        "POST",
        "/v1/realtime/calls",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/sdp"),
        ],
        offer.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/sdp"));
    let location = r.header("location").expect("Location").to_string();
    assert!(
        location.starts_with("/v1/realtime/calls/rtc_"),
        "{location}"
    );
    let call_id = location.rsplit('/').next().expect("id").to_string();
    let answer_sdp = r.text();
    assert!(answer_sdp.contains("a=ice-lite"), "ICE-lite answer");
    assert!(answer_sdp.contains("opus/48000/2"));
    assert!(answer_sdp.contains("typ host"));
    assert!(answer_sdp.contains("webrtc-datachannel"));
    let answer = SdpAnswer::from_sdp_string(&answer_sdp).expect("answer parses");
    client
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .expect("answer accepted");

    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.channel.is_some()
                && c.has("session.created"))
            .await,
        "connected, channel open, session.created"
    );
    assert_eq!(client.events[0]["type"], "session.created");
    assert_eq!(
        client.events[0]["session"]["instructions"],
        "Agent Callway."
    );

    // Greeting: events on the channel, audible Opus on the track.
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c
                .has("output_audio_buffer.stopped"))
            .await,
        "greeting played"
    );
    let order: Vec<&str> = client
        .events
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        !order.contains(&"response.output_audio.delta"),
        "no audio on the data channel"
    );
    let started = order
        .iter()
        .position(|t| *t == "output_audio_buffer.started")
        .expect("started");
    let done = order
        .iter()
        .position(|t| *t == "response.done")
        .expect("done");
    let stopped = order
        .iter()
        .position(|t| *t == "output_audio_buffer.stopped")
        .expect("stopped");
    assert!(started < done && done < stopped, "{order:?}");
    assert!(client.has("response.output_audio_transcript.done"));
    let loud = client.heard.iter().filter(|(_, db)| *db > -30.0).count();
    let line_frames = "Bonjour, ici Callway.".chars().count() * 50 / 20;
    assert!(
        loud * 10 >= line_frames * 6,
        "speech-like audio on the track: {loud} loud frames of {line_frames}"
    );
    assert!(
        client.heard.iter().any(|(_, db)| *db < -60.0),
        "silence outside the line"
    );

    // The visitor speaks: VAD on decoded Opus, then the scripted function call.
    client.say_tone(600, 700);
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c
                .has("response.function_call_arguments.done")
                && c.count("response.done") >= 2)
            .await,
        "events: {:?}",
        client
            .events
            .iter()
            .map(|e| e["type"].clone())
            .collect::<Vec<_>>()
    );
    for ty in [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ] {
        assert!(client.has(ty), "{ty}");
    }
    let call = client.last("response.function_call_arguments.done");
    assert_eq!(call["name"], "save_lead");
    let call_id_fn = call["call_id"].as_str().expect("call_id").to_string();
    client.send_event(json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id_fn, "output": "{\"lead_id\":\"L1\"}"}}));
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.count("response.done") >= 3)
            .await
    );
    let last_line = client
        .events
        .iter()
        .rev()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .expect("line");
    assert_eq!(last_line["transcript"], "Merci, au revoir.");

    let rec = sim.recorded();
    let s = &rec.sessions[0];
    assert_eq!(s.call_id.as_deref(), Some(call_id.as_str()));
    assert_eq!(s.transport, sim_openai::TransportKind::WebRtc);
    assert!(s.audio_in_ms > 1000, "{}", s.audio_in_ms);
    assert!(
        s.audio_in_max_dbfs.is_some_and(|d| d > -20.0),
        "{:?}",
        s.audio_in_max_dbfs
    );
    assert_eq!(s.tool_calls[0].name, "save_lead");
    assert!(
        s.scenario_mismatches.is_empty(),
        "{:?}",
        s.scenario_mismatches
    );

    let r = http(
        sim.addr(),
        "POST",
        &format!("{location}/hangup"),
        &[("Authorization", &format!("Bearer {KEY}"))],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn webrtc_barge_in_clears_the_buffer_and_truncates_at_the_played_position() {
    let mut cfg = config(scenario());
    cfg.generation_speed = 1.0;
    let sim = sim_openai::OpenAiSim::start(cfg).await.expect("start");
    let ek = mint(
        &sim,
        json!({"type": "realtime", "tools": [save_lead_tool()]}),
    )
    .await;
    let (mut client, offer, pending) = Client::offer().await;
    let r = http(
        sim.addr(),
        "POST",
        "/v1/realtime/calls",
        &[
            ("Authorization", &format!("Bearer {ek}")),
            ("Content-Type", "application/sdp"),
        ],
        offer.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201);
    client
        .rtc
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&r.text()).expect("answer"),
        )
        .expect("accept");
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.channel.is_some())
            .await
    );
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c
                .has("output_audio_buffer.started"))
            .await
    );
    client.pump(Duration::from_millis(400), |_| false).await;
    client.say_tone(400, 400);
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c
                .has("output_audio_buffer.cleared"))
            .await
    );
    let done = client.last("response.done");
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "turn_detected"
    );
    let tr = client.last("conversation.item.truncated");
    let played = tr["audio_end_ms"].as_u64().expect("audio_end_ms");
    assert!(
        (300..1000).contains(&played),
        "truncated where playback stopped: {played}"
    );
    assert!(
        !client.has("output_audio_buffer.stopped"),
        "cleared, not stopped"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn webrtc_output_clear_and_cancel_from_the_client() {
    let sim = start(scenario()).await;
    let ek = mint(&sim, json!({"type": "realtime"})).await;
    let (mut client, offer, pending) = Client::offer().await;
    let r = http(
        sim.addr(),
        "POST",
        "/v1/realtime/calls",
        &[
            ("Authorization", &format!("Bearer {ek}")),
            ("Content-Type", "application/sdp"),
        ],
        offer.as_bytes(),
    )
    .await;
    client
        .rtc
        .sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&r.text()).expect("answer"),
        )
        .expect("accept");
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.channel.is_some())
            .await
    );
    client.send_event(json!({"type": "response.cancel", "event_id": "c0"}));
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c.has("error"))
            .await
    );
    assert_eq!(
        client.last("error")["error"]["code"],
        "response_cancel_not_active"
    );
    assert_eq!(client.last("error")["error"]["event_id"], "c0");
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c
                .has("output_audio_buffer.started"))
            .await
    );
    client.send_event(json!({"type": "output_audio_buffer.clear"}));
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c
                .has("output_audio_buffer.cleared"))
            .await
    );
    sim.shutdown().await;
}
