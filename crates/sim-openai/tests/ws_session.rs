//! WebSocket sessions end to end with a fastwebsockets client.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use sim_openai::{OpenAiSim, Scenario, Step, ToolCall, Trigger};
use std::time::Duration;

fn scenario() -> Scenario {
    let step = |on, heard: Option<&str>, say: Option<&str>, call: Option<ToolCall>| Step {
        on,
        expect_transcript: heard.map(str::to_string),
        say: say.map(str::to_string),
        say_wav: None,
        call,
    };
    Scenario {
        steps: vec![
            step(
                Trigger::SessionStart,
                None,
                Some("Bonjour, je suis l'agent IA de Callway."),
                None,
            ),
            step(
                Trigger::UserTurn,
                Some("Je veux être rappelé."),
                None,
                Some(ToolCall {
                    name: "save_lead".into(),
                    arguments: json!({"first_name": "Marie", "phone": "06 12 34 56 78", "consent": true}),
                }),
            ),
            step(
                Trigger::ToolOutput,
                None,
                Some("C'est noté, à bientôt."),
                None,
            ),
        ],
        fallback_say: "Pardon ?".into(),
        ms_per_char: 40,
    }
}

fn pcmu_session() -> Value {
    json!({"type": "session.update", "event_id": "evt_update_1", "session": {
        "type": "realtime",
        "instructions": "Tu es l'agent de Callway.",
        "audio": {
            "input": {"format": {"type": "audio/pcmu"}, "transcription": {"model": "gpt-4o-mini-transcribe"},
                      "turn_detection": {"type": "server_vad", "silence_duration_ms": 300}},
            "output": {"format": {"type": "audio/pcmu"}, "voice": "marin"}
        },
        "tools": [save_lead_tool()]
    }})
}

fn decode_deltas(evs: &[Value]) -> Vec<u8> {
    evs.iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .flat_map(|e| {
            base64::engine::general_purpose::STANDARD
                .decode(e["delta"].as_str().unwrap_or(""))
                .unwrap_or_default()
        })
        .collect()
}

/// Asserts the next event is an `error` with this code, echoing `event_id`.
async fn expect_error(ws: &mut Ws, code: &str, event_id: &str) -> Value {
    let (ev, before) = until(ws, "error").await;
    assert!(
        before.is_empty(),
        "unexpected events before the error: {:?}",
        types(&before)
    );
    assert_eq!(ev["error"]["code"], code, "{ev}");
    assert_eq!(ev["error"]["event_id"], event_id, "{ev}");
    assert_eq!(ev["error"]["type"], "invalid_request_error");
    assert!(ev["event_id"]
        .as_str()
        .is_some_and(|i| i.starts_with("event_")));
    ev
}

#[tokio::test]
async fn voice_turns_tool_call_and_next_line_over_websocket() {
    let sim = start(scenario()).await;
    let mut ws = ws_open(&sim).await;
    let (created, _) = until(&mut ws, "session.created").await;
    assert_eq!(created["session"]["model"], "gpt-realtime");
    assert!(
        created["session"]["instructions"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "default instructions"
    );
    send(&mut ws, pcmu_session()).await;
    let (updated, _) = until(&mut ws, "session.updated").await;
    assert_eq!(
        updated["session"]["audio"]["output"]["format"]["type"],
        "audio/pcmu"
    );
    assert_eq!(
        updated["session"]["instructions"],
        "Tu es l'agent de Callway."
    );
    assert_ne!(
        updated["event_id"], "evt_update_1",
        "session.updated does not echo the client event_id"
    );

    // Greeting.
    send(&mut ws, json!({"type": "response.create"})).await;
    let (done, evs) = until(&mut ws, "response.done").await;
    let t = types(&evs);
    assert_eq!(t[0], "response.created");
    for ty in [
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
    ] {
        assert!(t.iter().any(|x| x == ty), "missing {ty} in {t:?}");
    }
    assert!(
        !t.iter().any(|x| x.starts_with("output_audio_buffer")),
        "no WebRTC buffer events on a WebSocket"
    );
    assert!(
        t.iter()
            .filter(|x| *x == "response.output_audio_transcript.delta")
            .count()
            > 3
    );
    assert_eq!(done["response"]["status"], "completed");
    assert!(
        done["response"]["usage"]["output_token_details"]["audio_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    let audio = decode_deltas(&evs);
    let line = "Bonjour, je suis l'agent IA de Callway.";
    assert_eq!(
        audio.len(),
        line.chars().count() * 40 * 8,
        "8 bytes per ms of pcmu"
    );
    assert!(callway_audio::level::pcmu_dbfs(&audio) > -35.0, "audible");
    let (transcript_done, _) = (
        evs.iter()
            .find(|e| e["type"] == "response.output_audio_transcript.done")
            .cloned(),
        (),
    );
    assert_eq!(
        transcript_done
            .and_then(|e| e["transcript"].as_str().map(str::to_string))
            .as_deref(),
        Some(line)
    );
    let greet_item = done["response"]["output"][0]["id"]
        .as_str()
        .expect("item id")
        .to_string();

    // The user speaks: 800 ms of tone, then silence.
    append_pcmu(&mut ws, &pcmu_frames(800, 600)).await;
    let (started, _) = until(&mut ws, "input_audio_buffer.speech_started").await;
    assert_eq!(
        started["audio_start_ms"], 0,
        "prefix padding reaches back to the start"
    );
    let (stopped, _) = until(&mut ws, "input_audio_buffer.speech_stopped").await;
    let end = stopped["audio_end_ms"].as_u64().expect("audio_end_ms");
    assert!(
        (1090..=1120).contains(&end),
        "speech end + 300 ms silence: {end}"
    );
    assert_eq!(stopped["item_id"], started["item_id"]);
    let (committed, _) = until(&mut ws, "input_audio_buffer.committed").await;
    assert_eq!(committed["item_id"], started["item_id"]);
    assert_eq!(committed["previous_item_id"], greet_item.as_str());
    let (tr, _) = until(
        &mut ws,
        "conversation.item.input_audio_transcription.completed",
    )
    .await;
    assert_eq!(tr["transcript"], "Je veux être rappelé.");
    // The automatic response is the function call.
    let (args_done, evs) = until(&mut ws, "response.function_call_arguments.done").await;
    assert!(types(&evs).contains(&"response.function_call_arguments.delta".to_string()));
    assert_eq!(args_done["name"], "save_lead");
    let args: Value =
        serde_json::from_str(args_done["arguments"].as_str().expect("arguments string"))
            .expect("JSON");
    assert_eq!(args["first_name"], "Marie");
    let call_id = args_done["call_id"].as_str().expect("call_id").to_string();
    assert!(call_id.starts_with("call_"));
    let (item_done, _) = until(&mut ws, "response.output_item.done").await;
    assert_eq!(item_done["item"]["type"], "function_call");
    assert_eq!(item_done["item"]["status"], "completed");
    let (done, _) = until(&mut ws, "response.done").await;
    assert_eq!(done["response"]["output"][0]["type"], "function_call");

    // Nothing happens until the output and response.create arrive.
    assert!(matches!(
        next(&mut ws, Duration::from_millis(300)).await,
        Got::Timeout
    ));
    send(&mut ws, json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call_id, "output": "{\"lead_id\":\"L1\"}"}})).await;
    let (added, _) = until(&mut ws, "conversation.item.added").await;
    assert_eq!(added["item"]["type"], "function_call_output");
    until(&mut ws, "conversation.item.done").await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let (done, evs) = until(&mut ws, "response.done").await;
    let tr = evs
        .iter()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .expect("transcript");
    assert_eq!(tr["transcript"], "C'est noté, à bientôt.");
    assert_eq!(done["response"]["status"], "completed");

    // Truncate: beyond the audio sent → documented error; within → truncated.
    let sent_ms = (line.chars().count() * 40) as u64;
    send(&mut ws, json!({"type": "conversation.item.truncate", "event_id": "evt_tr1", "item_id": greet_item, "content_index": 0, "audio_end_ms": sent_ms + 85})).await;
    let e = expect_error(&mut ws, "invalid_value", "evt_tr1").await;
    assert_eq!(
        e["error"]["message"],
        format!(
            "Audio content of {sent_ms}ms is already shorter than {}ms",
            sent_ms + 85
        )
    );
    send(&mut ws, json!({"type": "conversation.item.truncate", "event_id": "evt_tr2", "item_id": "item_nope", "content_index": 0, "audio_end_ms": 10})).await;
    expect_error(&mut ws, "item_not_found", "evt_tr2").await;
    send(&mut ws, json!({"type": "conversation.item.truncate", "item_id": greet_item, "content_index": 0, "audio_end_ms": 500})).await;
    let (tr, _) = until(&mut ws, "conversation.item.truncated").await;
    assert_eq!(tr["audio_end_ms"], 500);
    send(
        &mut ws,
        json!({"type": "conversation.item.retrieve", "item_id": greet_item}),
    )
    .await;
    let (got, _) = until(&mut ws, "conversation.item.retrieved").await;
    let kept = got["item"]["content"][0]["transcript"]
        .as_str()
        .expect("transcript")
        .to_string();
    assert!(
        !kept.is_empty() && kept.len() < line.len(),
        "transcript cut with the audio: {kept:?}"
    );

    let rec = sim.recorded();
    let s = &rec.sessions[0];
    assert_eq!(s.session["audio"]["input"]["format"]["type"], "audio/pcmu");
    assert_eq!(s.audio_in_ms, 1400);
    assert!(
        s.audio_in_max_dbfs.is_some_and(|d| d > -16.0 && d < -14.5),
        "{:?}",
        s.audio_in_max_dbfs
    );
    assert_eq!(s.tool_calls.len(), 1);
    assert_eq!(s.tool_calls[0].arguments["phone"], "06 12 34 56 78");
    assert_eq!(
        s.tool_outputs,
        vec![(call_id, "{\"lead_id\":\"L1\"}".to_string())]
    );
    assert_eq!(s.lines_said.len(), 2);
    assert!(
        s.scenario_mismatches.is_empty(),
        "{:?}",
        s.scenario_mismatches
    );
    assert_eq!(s.client_events[0]["type"], "session.update");
    assert!(s
        .client_events
        .iter()
        .any(|e| e["audio"]["_base64_chars"].as_u64() == Some(216)));
    sim.shutdown().await;
}

#[tokio::test]
async fn invalid_client_events_get_documented_errors() {
    let mut cfg = config(scenario());
    cfg.generation_speed = 1.0; // keep the response active long enough
    let sim = OpenAiSim::start(cfg).await.expect("start");
    let mut ws = ws_open(&sim).await;
    until(&mut ws, "session.created").await;

    ws.write_frame(fastwebsockets::Frame::text(fastwebsockets::Payload::Owned(
        b"not json".to_vec(),
    )))
    .await
    .expect("send");
    let (e, _) = until(&mut ws, "error").await;
    assert_eq!(e["error"]["code"], "invalid_json");
    send(&mut ws, json!({"event_id": "e1", "session": {}})).await;
    let e = expect_error(&mut ws, "invalid_event", "e1").await;
    assert_eq!(e["error"]["message"], "The 'type' field is missing.");
    send(
        &mut ws,
        json!({"type": "response.audio.delta", "event_id": "e2"}),
    )
    .await;
    let e = expect_error(&mut ws, "invalid_value", "e2").await;
    assert_eq!(e["error"]["param"], "type");
    send(
        &mut ws,
        json!({"type": "conversation.item.create", "event_id": "e3"}),
    )
    .await;
    let e = expect_error(&mut ws, "missing_required_parameter", "e3").await;
    assert_eq!(e["error"]["param"], "item");
    send(
        &mut ws,
        json!({"type": "session.update", "event_id": "e4", "session": {"instructions": "x"}}),
    )
    .await;
    let e = expect_error(&mut ws, "missing_required_parameter", "e4").await;
    assert_eq!(e["error"]["param"], "session.type");
    send(&mut ws, json!({"type": "session.update", "event_id": "e5", "session": {"type": "realtime", "modalities": ["text"]}})).await;
    let e = expect_error(&mut ws, "unknown_parameter", "e5").await;
    assert_eq!(
        e["error"]["message"],
        "Unknown parameter: 'session.modalities'."
    );
    send(
        &mut ws,
        json!({"type": "session.update", "event_id": "e6", "session": {"type": "transcription"}}),
    )
    .await;
    expect_error(&mut ws, "invalid_value", "e6").await;
    send(&mut ws, json!({"type": "session.update", "event_id": "e7", "session": {"type": "realtime", "model": "gpt-realtime-mini"}})).await;
    expect_error(&mut ws, "invalid_value", "e7").await;
    send(
        &mut ws,
        json!({"type": "response.cancel", "event_id": "e8"}),
    )
    .await;
    let e = expect_error(&mut ws, "response_cancel_not_active", "e8").await;
    assert_eq!(
        e["error"]["message"],
        "Cancellation failed: no active response found"
    );
    send(
        &mut ws,
        json!({"type": "input_audio_buffer.commit", "event_id": "e9"}),
    )
    .await;
    let e = expect_error(&mut ws, "input_audio_buffer_commit_empty", "e9").await;
    assert!(e["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("0.00ms")));
    send(&mut ws, json!({"type": "conversation.item.create", "event_id": "e10", "item": {"type": "function_call_output", "call_id": "call_unknown", "output": "{}"}})).await;
    let e = expect_error(&mut ws, "invalid_value", "e10").await;
    assert_eq!(e["error"]["param"], "item.call_id");
    send(&mut ws, json!({"type": "conversation.item.create", "event_id": "e11", "item": {"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "x"}]}})).await;
    expect_error(&mut ws, "invalid_value", "e11").await;
    send(
        &mut ws,
        json!({"type": "output_audio_buffer.clear", "event_id": "e12"}),
    )
    .await;
    expect_error(&mut ws, "invalid_value", "e12").await;
    send(
        &mut ws,
        json!({"type": "input_audio_buffer.append", "event_id": "e13", "audio": "%%%"}),
    )
    .await;
    expect_error(&mut ws, "invalid_value", "e13").await;
    send(
        &mut ws,
        json!({"type": "response.create", "event_id": "e14", "response": {"temperature": 0.8}}),
    )
    .await;
    let e = expect_error(&mut ws, "unknown_parameter", "e14").await;
    assert_eq!(e["error"]["param"], "response.temperature");
    send(
        &mut ws,
        json!({"type": "response.cancel", "event_id": "e15", "extra": 1}),
    )
    .await;
    expect_error(&mut ws, "unknown_parameter", "e15").await;

    // One active response at a time.
    send(
        &mut ws,
        json!({"type": "response.create", "event_id": "r1"}),
    )
    .await;
    let (created, _) = until(&mut ws, "response.created").await;
    let rid = created["response"]["id"].as_str().expect("id").to_string();
    send(
        &mut ws,
        json!({"type": "response.create", "event_id": "r2"}),
    )
    .await;
    let (e, _) = until(&mut ws, "error").await;
    assert_eq!(
        e["error"]["code"],
        "conversation_already_has_active_response"
    );
    assert_eq!(e["error"]["event_id"], "r2");
    assert!(e["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains(&rid)));
    // Voice is locked once audio was produced.
    until(&mut ws, "response.output_audio.delta").await;
    send(&mut ws, json!({"type": "session.update", "event_id": "v1", "session": {"type": "realtime", "audio": {"output": {"voice": "cedar"}}}})).await;
    let (e, _) = until(&mut ws, "error").await;
    assert_eq!(e["error"]["code"], "cannot_update_voice");
    send(
        &mut ws,
        json!({"type": "response.cancel", "event_id": "c1"}),
    )
    .await;
    let (done, _) = until(&mut ws, "response.done").await;
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "client_cancelled"
    );

    let rec = sim.recorded();
    let s = &rec.sessions[0];
    assert_eq!(s.errors_sent.len(), 18);
    assert_eq!(s.client_events[0], json!({"_unparsed": "not json"}));
    sim.shutdown().await;
}

#[tokio::test]
async fn speech_during_a_response_cancels_it() {
    let mut cfg = config(scenario());
    cfg.generation_speed = 1.0;
    let sim = OpenAiSim::start(cfg).await.expect("start");
    let mut ws = ws_open(&sim).await;
    send(&mut ws, pcmu_session()).await;
    until(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "response.create"})).await;
    until(&mut ws, "response.output_audio.delta").await;
    append_pcmu(&mut ws, &pcmu_frames(300, 0)).await;
    let (_, _) = until(&mut ws, "input_audio_buffer.speech_started").await;
    let (done, _) = until(&mut ws, "response.done").await;
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"],
        json!({"type": "cancelled", "reason": "turn_detected"})
    );
    assert_eq!(done["response"]["output"][0]["status"], "incomplete");
    sim.shutdown().await;
}

#[tokio::test]
async fn beta_header_and_beta_events_are_refused_with_close_4000() {
    let sim = start(scenario()).await;
    let auth = format!("Bearer {KEY}");
    let mut ws = ws_connect(
        sim.addr(),
        "/v1/realtime?model=gpt-realtime",
        &[("Authorization", &auth), ("OpenAI-Beta", "realtime=v1")],
    )
    .await
    .expect("upgrade");
    let (e, _) = until(&mut ws, "error").await;
    assert_eq!(e["error"]["code"], "beta_api_shape_disabled");
    assert_eq!(
        e["error"]["message"],
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."
    );
    assert!(matches!(
        next(&mut ws, Duration::from_secs(2)).await,
        Got::Closed(4000, _)
    ));

    let mut ws = ws_open(&sim).await;
    until(&mut ws, "session.created").await;
    send(&mut ws, json!({"type": "session.update", "event_id": "b1", "session": {"modalities": ["text", "audio"], "input_audio_format": "g711_ulaw"}})).await;
    let e = expect_error(&mut ws, "beta_api_shape_disabled", "b1").await;
    assert!(e["error"]["message"].is_string());
    assert!(matches!(
        next(&mut ws, Duration::from_secs(2)).await,
        Got::Closed(4000, _)
    ));
    assert_eq!(sim.recorded().sessions[0].closed_with, Some(4000));
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_model_gets_invalid_model_then_close() {
    let sim = start(scenario()).await;
    let auth = format!("Bearer {KEY}");
    let mut ws = ws_connect(
        sim.addr(),
        "/v1/realtime?model=gpt-live-1",
        &[("Authorization", &auth)],
    )
    .await
    .expect("upgrade");
    let (e, _) = until(&mut ws, "error").await;
    assert_eq!(e["error"]["code"], "invalid_model");
    assert_eq!(
        e["error"]["message"],
        "Model \"gpt-live-1\" is not supported in realtime mode."
    );
    assert!(matches!(
        next(&mut ws, Duration::from_secs(2)).await,
        Got::Closed(_, _)
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn ephemeral_key_over_subprotocol_carries_the_minted_session() {
    let sim = start(scenario()).await;
    let ek = mint(&sim, json!({"type": "realtime", "model": "gpt-realtime", "instructions": "Résumé : Marie veut un rappel."})).await;
    let proto = format!("realtime, openai-insecure-api-key.{ek}");
    let mut ws = ws_connect(
        sim.addr(),
        "/v1/realtime",
        &[("Sec-WebSocket-Protocol", &proto)],
    )
    .await
    .expect("upgrade");
    let (created, _) = until(&mut ws, "session.created").await;
    assert_eq!(
        created["session"]["instructions"],
        "Résumé : Marie veut un rappel."
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn failure_knobs_drop_the_socket_and_sessions_expire() {
    let mut cfg = config(scenario());
    cfg.ws_fail_after_events = Some(2);
    let sim = OpenAiSim::start(cfg).await.expect("start");
    let mut ws = ws_open(&sim).await;
    send(&mut ws, pcmu_session()).await;
    until(&mut ws, "session.updated").await;
    assert!(
        matches!(next(&mut ws, Duration::from_secs(2)).await, Got::Dropped),
        "dropped without a close frame"
    );
    sim.shutdown().await;

    let mut cfg = config(scenario());
    cfg.ws_fail_after = Some(Duration::from_millis(200));
    let sim = OpenAiSim::start(cfg).await.expect("start");
    let mut ws = ws_open(&sim).await;
    until(&mut ws, "session.created").await;
    assert!(matches!(
        next(&mut ws, Duration::from_secs(2)).await,
        Got::Dropped
    ));
    sim.shutdown().await;

    let mut cfg = config(scenario());
    cfg.max_session = Duration::from_millis(300);
    let sim = OpenAiSim::start(cfg).await.expect("start");
    let mut ws = ws_open(&sim).await;
    let (e, _) = until(&mut ws, "error").await;
    assert_eq!(e["error"]["code"], "session_expired");
    assert!(matches!(
        next(&mut ws, Duration::from_secs(2)).await,
        Got::Closed(1001, _)
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn undeclared_tool_is_not_called_and_the_mismatch_is_recorded() {
    let sim = start(scenario()).await;
    let mut ws = ws_open(&sim).await;
    // No tools declared.
    send(&mut ws, json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}}})).await;
    until(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "response.create"})).await;
    until(&mut ws, "response.done").await;
    send(&mut ws, json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Rappelez-moi"}]}})).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let (done, evs) = until(&mut ws, "response.done").await;
    assert!(!types(&evs)
        .iter()
        .any(|t| t.starts_with("response.function_call")));
    assert_eq!(done["response"]["output"][0]["type"], "message");
    let rec = sim.recorded();
    assert!(
        rec.sessions[0].scenario_mismatches[0].contains("save_lead"),
        "{:?}",
        rec.sessions[0].scenario_mismatches
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_clients_close_code_is_recorded() {
    let sim = start(scenario()).await;
    let mut ws = ws_open(&sim).await;
    until(&mut ws, "session.created").await;
    ws.write_frame(fastwebsockets::Frame::close(1000, b"bye"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while sim.recorded().sessions[0].client_closed_with.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "close not recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = &sim.recorded().sessions[0];
    assert_eq!(s.client_closed_with, Some(1000));
    assert_eq!(s.closed_with, None, "the server did not close it");
    sim.shutdown().await;
}

#[tokio::test]
async fn websocket_sessions_can_follow_their_own_scenario() {
    let sim = start(scenario()).await;
    let phone = Scenario {
        steps: vec![Step {
            on: Trigger::SessionStart,
            expect_transcript: None,
            say: Some("Allô, ici le téléphone.".into()),
            say_wav: None,
            call: None,
        }],
        fallback_say: "Pardon ?".into(),
        ms_per_char: 10,
    };
    sim.set_websocket_scenario(Some(phone));
    let mut ws = ws_open(&sim).await;
    send(&mut ws, pcmu_session()).await;
    until(&mut ws, "session.updated").await;
    send(&mut ws, json!({"type": "response.create"})).await;
    until(&mut ws, "response.done").await;
    assert_eq!(
        sim.recorded().sessions[0].lines_said,
        ["Allô, ici le téléphone."]
    );
    sim.shutdown().await;
}
