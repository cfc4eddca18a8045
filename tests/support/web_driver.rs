//! Shared by the web-call tests: a scripted web agent and a "visitor" driving it from a second
//! sideband (what a voice would make the model do), without a browser.

#![allow(dead_code)]

use fastwebsockets::{Frame, Payload};
use serde_json::{json, Value};
use sim_openai::{Scenario, Step, ToolCall, Trigger};
use std::time::{Duration, Instant};

pub fn step(on: Trigger, say: &str, call: Option<(&str, Value)>) -> Step {
    Step {
        on,
        expect_transcript: None,
        say: Some(say.into()),
        say_wav: None,
        call: call.map(|(name, arguments)| ToolCall {
            name: name.into(),
            arguments,
        }),
    }
}

/// The web agent: saves the lead, triggers the callback, says goodbye.
pub fn web_scenario(first_name: &str) -> Scenario {
    let mut s = Scenario::default_sandbox();
    s.steps = vec![
        step(
            Trigger::SessionStart,
            "Bonjour, je suis l'agent IA de Callway.",
            None,
        ),
        step(
            Trigger::UserTurn,
            "Je note vos coordonnées.",
            Some((
                "save_lead",
                json!({"first_name": first_name, "last_name": "Martin", "phone": "06 12 34 56 78", "consent": true}),
            )),
        ),
        step(
            Trigger::ToolOutput,
            "C'est noté.",
            Some(("trigger_call", json!({"lead_id": "{{output.lead_id}}"}))),
        ),
        step(
            Trigger::ToolOutput,
            "Votre téléphone va sonner. Au revoir !",
            None,
        ),
    ];
    s.ms_per_char = 5;
    s
}

pub async fn until<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a visitor's voice would make the model do, played on a second sideband attached with the
/// standard key: the page's greeting request, then (after the greeting) a user message and a
/// response. The server's own sideband runs whatever the model then calls.
pub async fn visitor_says(openai_base_url: &str, key: &str, call: &str, text: &str) {
    let ep = callway_ws::WsEndpoint::new(
        openai_base_url,
        &format!("/realtime?call_id={call}"),
        callway_ws::Credential::new(key),
        Duration::from_secs(2),
    )
    .unwrap();
    let mut ws = ep.connect().await.expect("driver sideband");
    // The page asks for the greeting when the session starts; the visitor answers after it.
    ws.write_frame(Frame::text(Payload::Owned(
        json!({"type": "response.create"}).to_string().into_bytes(),
    )))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the greeting never ended");
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.read_frame())
            .await
            .expect("a server event")
            .expect("the driver socket stays open");
        if frame.opcode == fastwebsockets::OpCode::Text
            && serde_json::from_slice::<Value>(&frame.payload)
                .is_ok_and(|v| v["type"] == "response.done")
        {
            break;
        }
    }
    for ev in [
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                "content": [{"type": "input_text", "text": text}]}}),
        json!({"type": "response.create"}),
    ] {
        ws.write_frame(Frame::text(Payload::Owned(ev.to_string().into_bytes())))
            .await
            .unwrap();
    }
    // The driver stays attached a moment so its events are read, then leaves quietly.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = ws.write_frame(Frame::close(1000, b"")).await;
    });
}
