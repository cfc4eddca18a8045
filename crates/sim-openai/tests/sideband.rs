//! The unified interface on a real WebRTC call: the "server" creates the call with multipart
//! `sdp` + `session` and the standard key, a str0m "browser" connects with the answer, and the
//! server attaches a sideband WebSocket (`?call_id=`) that sees every server event, answers the
//! model's function call, and hangs the call up.

mod common;

use common::rtc_client::Client;
use common::*;
use serde_json::{json, Value};
use sim_openai::{
    CallCreation, CallEndReason, Scenario, SidebandEndKind, SidebandRefusal, Step, ToolCall,
    Trigger,
};
use std::time::Duration;

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
                expect_transcript: None,
                say: None,
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
        ms_per_char: 20,
    }
}

fn session() -> Value {
    json!({"type": "realtime", "model": "gpt-realtime-2.1", "instructions": "Agent Callway (sideband).",
           "tools": [save_lead_tool()],
           "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}},
                     "output": {"voice": "marin"}}})
}

/// Reads sideband events until one of type `ty`, returning them all (that one last).
async fn read_until(ws: &mut Ws, ty: &str) -> Vec<Value> {
    let mut seen = vec![];
    loop {
        match next(ws, Duration::from_secs(10)).await {
            Got::Event(ev) => {
                let done = ev["type"] == ty;
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            other => panic!(
                "waiting for {ty} on the sideband, got {other:?}; seen {:?}",
                types(&seen)
            ),
        }
    }
}

/// Connects the client: ICE, DTLS, the data channel open, `session.created` received.
async fn connect(client: &mut Client) {
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.channel.is_some()
                && c.has("session.created"))
            .await,
        "connected, channel open, session.created"
    );
}

async fn hangup(sim: &sim_openai::OpenAiSim, call_id: &str, key: &str) -> HttpResp {
    http(
        sim.addr(),
        "POST",
        &format!("/v1/realtime/calls/{call_id}/hangup"),
        &[("Authorization", &format!("Bearer {key}"))],
        b"",
    )
    .await
}

#[tokio::test]
async fn the_sideband_sees_every_event_answers_the_tool_call_and_the_hangup_closes_both() {
    let sim = start(scenario()).await;
    let (mut client, call_id) = call_with_form(&sim, Some(&session())).await;
    assert_eq!(sim.live_calls(), vec![call_id.clone()]);
    // The server attaches as soon as it has the call id, before the browser connects.
    let mut sb = attach(&sim, &call_id).await.expect("sideband attaches");
    connect(&mut client).await;
    let created = client.last("session.created");
    assert_eq!(created["session"]["model"], "gpt-realtime-2.1");
    assert_eq!(
        created["session"]["instructions"],
        "Agent Callway (sideband)."
    );
    assert_eq!(created["session"]["audio"]["output"]["voice"], "marin");

    // The server starts the greeting from the sideband; both transports see the response.
    send(
        &mut sb,
        json!({"type": "response.create", "event_id": "sb_greet"}),
    )
    .await;
    let greeting = client.during(read_until(&mut sb, "response.done")).await;
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.has("response.done"))
            .await,
        "{:?}",
        client.types()
    );
    let line = greeting
        .iter()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .expect("transcript on the sideband");
    assert_eq!(line["transcript"], "Bonjour, ici Callway.");
    assert!(
        !types(&greeting).iter().any(|t| t.contains("audio.delta")),
        "never audio on the sideband: {:?}",
        types(&greeting)
    );
    // The same events, same ids, same order on the data channel.
    let on_channel: Vec<&Value> = client.events.iter().map(|e| &e["event_id"]).collect();
    let first = on_channel
        .iter()
        .position(|id| **id == greeting[0]["event_id"])
        .expect("the sideband's first event is on the data channel");
    let ids: Vec<&Value> = greeting.iter().map(|e| &e["event_id"]).collect();
    assert_eq!(on_channel[first..first + ids.len()], ids[..]);

    // The visitor speaks; the model calls save_lead; the sideband sees the call.
    client.say_tone(600, 700);
    let before_call = client
        .during(read_until(&mut sb, "response.function_call_arguments.done"))
        .await;
    assert!(types(&before_call).contains(&"input_audio_buffer.speech_started".to_string()));
    let call = before_call.last().expect("call").clone();
    assert_eq!(call["name"], "save_lead");
    let fn_call_id = call["call_id"].as_str().expect("call_id").to_string();
    client.during(read_until(&mut sb, "response.done")).await;

    // The server answers on the sideband; the browser never does.
    let output = json!({"status": "saved", "lead_id": "L1"}).to_string();
    send(&mut sb, json!({"type": "conversation.item.create", "event_id": "sb_out",
                         "item": {"type": "function_call_output", "call_id": fn_call_id, "output": output}})).await;
    send(
        &mut sb,
        json!({"type": "response.create", "event_id": "sb_next"}),
    )
    .await;
    let after = client.during(read_until(&mut sb, "response.done")).await;
    let said = after
        .iter()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .expect("the next line");
    assert_eq!(said["transcript"], "Merci, au revoir.");
    // The browser sees the tool output as a conversation item, and the line after it.
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.count("response.done") >= 3)
            .await
    );
    assert!(client
        .events
        .iter()
        .any(|e| e["type"] == "conversation.item.added"
            && e["item"]["type"] == "function_call_output"
            && e["item"]["output"] == output.as_str()));

    let rec = sim.recorded();
    let c = rec.call(&call_id).expect("call recorded");
    assert_eq!(c.created_with, CallCreation::Multipart);
    assert_eq!(c.session_request.as_ref(), Some(&session()));
    let s = rec.call_session(&call_id).expect("session");
    assert_eq!(s.tool_outputs, vec![(fn_call_id.clone(), output.clone())]);
    assert!(
        s.scenario_mismatches.is_empty(),
        "{:?}",
        s.scenario_mismatches
    );
    let sbr = &rec.sidebands_of(&call_id)[0];
    let sent: Vec<&str> = sbr
        .client_events
        .iter()
        .filter_map(|e| e.event["event_id"].as_str())
        .collect();
    assert_eq!(sent, vec!["sb_greet", "sb_out", "sb_next"]);
    assert_eq!(
        sbr.events_of_type("conversation.item.create")[0]["item"]["call_id"],
        fn_call_id.as_str()
    );
    assert!(sbr
        .server_event_types
        .iter()
        .any(|t| t == "response.function_call_arguments.done"));
    assert!(sbr.ended.is_none());

    // Hang-up needs the standard key.
    let ek = mint(&sim, json!({"type": "realtime"})).await;
    for key in ["sk-wrong-key-0000", ek.as_str()] {
        assert_eq!(hangup(&sim, &call_id, key).await.status, 401);
    }
    assert_eq!(sim.live_calls(), vec![call_id.clone()]);
    // Hang-up: 200, the sideband gets 1000, the data channel and the peer close.
    let r = hangup(&sim, &call_id, KEY).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(sim.live_calls().is_empty());
    match client.during(next(&mut sb, Duration::from_secs(5))).await {
        Got::Closed(code, _) => assert_eq!(code, 1000),
        other => panic!("expected close 1000, got {other:?}"),
    }
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.channel_closed
                && c.peer_closed)
            .await,
        "channel closed {}, peer closed {}",
        client.channel_closed,
        client.peer_closed
    );
    // Ended is ended: no attach, no second hang-up.
    let err = attach(&sim, &call_id).await.err().expect("refused");
    assert!(err.contains("404"), "{err}");
    assert_eq!(hangup(&sim, &call_id, KEY).await.status, 404);

    let rec = sim.recorded();
    let c = rec.call(&call_id).expect("call");
    let asked = c.hangup_requested.expect("hang-up recorded");
    let ended = c.ended.expect("end recorded");
    assert_eq!(ended.reason, CallEndReason::HungUp);
    assert!(asked.seq < ended.at.seq && asked.at <= ended.at.at);
    let sbr = &rec.sidebands_of(&call_id)[0];
    assert_eq!(
        sbr.ended.map(|e| e.kind),
        Some(SidebandEndKind::ServerClosed(1000))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_dropped_sideband_reattaches_and_several_can_listen() {
    let sim = start(scenario()).await;
    // No `session` part: the default session.
    let (mut client, call_id) = call_with_form(&sim, None).await;
    connect(&mut client).await;
    assert_eq!(
        client.last("session.created")["session"]["model"],
        "gpt-realtime"
    );
    let mut first = attach(&sim, &call_id).await.expect("attach");

    assert_eq!(sim.drop_sidebands(&call_id), 1);
    assert!(matches!(
        client
            .during(next(&mut first, Duration::from_secs(5)))
            .await,
        Got::Dropped
    ));
    // The call goes on: the browser still talks to the model.
    client.send_event(json!({"type": "response.create"}));
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.has("response.done"))
            .await
    );
    // Two sidebands at once after the re-attach; both get the next response.
    let mut second = attach(&sim, &call_id).await.expect("re-attach");
    let mut third = attach(&sim, &call_id).await.expect("another");
    send(&mut second, json!({"type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Rappelez-moi."}]}})).await;
    send(&mut second, json!({"type": "response.create"})).await;
    // (The default session declares no tool: the model says its fallback line.) The response
    // ends with `output_audio_buffer.stopped`; nothing is sent after it.
    let a = client
        .during(read_until(&mut second, "output_audio_buffer.stopped"))
        .await;
    let b = client
        .during(read_until(&mut third, "output_audio_buffer.stopped"))
        .await;
    let line = a
        .iter()
        .find(|e| e["type"] == "response.output_audio_transcript.done")
        .expect("a line");
    assert_eq!(line["transcript"], "Pardon ?");
    assert_eq!(
        a.iter().map(|e| &e["event_id"]).collect::<Vec<_>>(),
        b.iter().map(|e| &e["event_id"]).collect::<Vec<_>>()
    );
    // The third's client close is its own business: the call and the second go on.
    third
        .write_frame(fastwebsockets::Frame::close(1000, b"bye"))
        .await
        .expect("close");
    let end = client
        .during(next(&mut third, Duration::from_secs(5)))
        .await;
    assert!(matches!(end, Got::Closed(1000, _)), "{end:?}");
    send(&mut second, json!({"type": "response.create"})).await;
    client
        .during(read_until(&mut second, "response.done"))
        .await;
    assert_eq!(sim.live_calls(), vec![call_id.clone()]);

    let rec = sim.recorded();
    let kinds: Vec<Option<SidebandEndKind>> = rec
        .sidebands_of(&call_id)
        .iter()
        .map(|s| s.ended.map(|e| e.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            Some(SidebandEndKind::Dropped),
            None,
            Some(SidebandEndKind::ClientClosed(1000))
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sideband_knobs_drop_after_n_events_and_refuse_the_next_attach() {
    let mut cfg = config(scenario());
    cfg.sideband_fail_after_events = Some(3);
    let sim = sim_openai::OpenAiSim::start(cfg).await.expect("start");
    let (mut client, call_id) = call_with_form(&sim, Some(&session())).await;
    connect(&mut client).await;

    sim.refuse_next_sideband(SidebandRefusal::NotFound);
    let err = attach(&sim, &call_id).await.err().expect("refused");
    assert!(err.contains("404"), "{err}");
    sim.refuse_next_sideband(SidebandRefusal::Unauthorized);
    let err = attach(&sim, &call_id).await.err().expect("refused");
    assert!(err.contains("401"), "{err}");

    let mut sb = attach(&sim, &call_id).await.expect("knob consumed");
    send(&mut sb, json!({"type": "response.create"})).await;
    for _ in 0..3 {
        assert!(matches!(
            client.during(next(&mut sb, Duration::from_secs(5))).await,
            Got::Event(_)
        ));
    }
    assert!(matches!(
        client.during(next(&mut sb, Duration::from_secs(5))).await,
        Got::Dropped
    ));
    // The response the dropped sideband asked for still plays to the browser.
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c
                .has("output_audio_buffer.stopped"))
            .await
    );
    let rec = sim.recorded();
    let sbr = &rec.sidebands_of(&call_id)[0];
    assert_eq!(sbr.server_event_types.len(), 3);
    assert_eq!(sbr.ended.map(|e| e.kind), Some(SidebandEndKind::Dropped));
    assert_eq!(
        rec.http_errors
            .iter()
            .filter(|e| e.path == "/v1/realtime")
            .map(|e| e.status)
            .collect::<Vec<_>>(),
        vec![404, 401]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_client_events_on_the_sideband_get_the_same_errors() {
    let sim = start(scenario()).await;
    let (mut client, call_id) = call_with_form(&sim, Some(&session())).await;
    connect(&mut client).await;
    let mut sb = attach(&sim, &call_id).await.expect("attach");
    send(&mut sb, json!({"type": "session.update", "event_id": "bad1", "session": {"type": "realtime", "voice": "marin"}})).await;
    let (err, _) = client.during(until(&mut sb, "error")).await;
    assert_eq!(err["error"]["code"], "unknown_parameter");
    assert_eq!(err["error"]["param"], "session.voice");
    assert_eq!(err["error"]["event_id"], "bad1");
    // A valid update from the sideband changes the call's session for everyone.
    send(&mut sb, json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Nouvelles consignes."}})).await;
    let (upd, _) = client.during(until(&mut sb, "session.updated")).await;
    assert_eq!(upd["session"]["instructions"], "Nouvelles consignes.");
    assert!(
        client
            .pump(Duration::from_secs(5), |c| c.has("session.updated"))
            .await
    );
    let s = sim.recorded();
    let s = s.call_session(&call_id).expect("session");
    assert_eq!(s.session["instructions"], "Nouvelles consignes.");
    sim.shutdown().await;
}

#[tokio::test]
async fn session_expiry_reaches_the_sideband_then_closes_it_with_1001() {
    let mut cfg = config(scenario());
    cfg.max_session = Duration::from_millis(1500);
    let sim = sim_openai::OpenAiSim::start(cfg).await.expect("start");
    let (mut client, call_id) = call_with_form(&sim, Some(&session())).await;
    let mut sb = attach(&sim, &call_id).await.expect("attach");
    let (err, _) = client.during(until(&mut sb, "error")).await;
    assert_eq!(err["error"]["code"], "session_expired");
    let end = client.during(next(&mut sb, Duration::from_secs(5))).await;
    assert!(matches!(end, Got::Closed(1001, _)), "{end:?}");
    assert!(
        client
            .pump(Duration::from_secs(10), |c| c.peer_closed)
            .await,
        "the peer connection ends with the session"
    );
    let rec = sim.recorded();
    let c = rec.call(&call_id).expect("call");
    assert_eq!(
        c.ended.map(|e| e.reason),
        Some(CallEndReason::SessionClosed(1001))
    );
    assert!(c.hangup_requested.is_none());
    assert_eq!(
        rec.sidebands_of(&call_id)[0].ended.map(|e| e.kind),
        Some(SidebandEndKind::ServerClosed(1001))
    );
    assert!(sim.live_calls().is_empty());
    let err = attach(&sim, &call_id).await.err().expect("refused");
    assert!(err.contains("404"), "{err}");
    sim.shutdown().await;
}
