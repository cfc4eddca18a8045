//! Deterministic tests of the sideband controller: events and time in, actions out.

use super::control::{Action, Control, ToolResult, GOODBYE_MAX, PLAYOUT_MAX};
use callway_core::transcript::Speaker;
use callway_core::web_call::WebCallEnd;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn control(t0: Instant) -> Control {
    Control::new(t0 + Duration::from_secs(300), "au revoir".into())
}

fn sends(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn tools(actions: &[Action]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RunTool { call_id, name, .. } => Some((call_id.clone(), name.clone())),
            _ => None,
        })
        .collect()
}

fn call_item(call_id: &str) -> Value {
    json!({"type":"function_call","status":"completed","call_id":call_id,"name":"save_lead","arguments":"{}"})
}

#[test]
fn a_function_call_seen_three_times_runs_once_then_one_response_create() {
    let t0 = Instant::now();
    let mut c = control(t0);
    c.on_event(
        &json!({"type":"response.created","response":{"id":"resp_1"}}),
        t0,
    );
    let a = c.on_event(
        &json!({"type":"response.function_call_arguments.done","response_id":"resp_1",
        "call_id":"call_1","name":"save_lead","arguments":"{}"}),
        t0,
    );
    assert_eq!(tools(&a), vec![("call_1".into(), "save_lead".into())]);
    let a = c.on_event(&json!({"type":"response.output_item.done","response_id":"resp_1","item":call_item("call_1")}), t0);
    assert!(tools(&a).is_empty());
    let a = c.on_event(
        &json!({"type":"response.done","response":{"id":"resp_1","output":[call_item("call_1")]}}),
        t0,
    );
    assert!(
        tools(&a).is_empty() && sends(&a).is_empty(),
        "no response.create before the output"
    );
    let a = c.tool_done(
        "call_1",
        ToolResult {
            output: Some(r#"{"lead_id":"x"}"#.into()),
            handoff: false,
        },
        t0,
    );
    let s = sends(&a);
    assert_eq!(s[0]["type"], "conversation.item.create");
    assert_eq!(s[0]["item"]["call_id"], "call_1");
    assert_eq!(s[1], json!({"type":"response.create"}));
    assert_eq!(s.len(), 2);
}

#[test]
fn an_interrupted_call_is_not_run() {
    let t0 = Instant::now();
    let mut c = control(t0);
    let mut item = call_item("call_9");
    item["status"] = json!("incomplete");
    let a = c.on_event(
        &json!({"type":"response.done","response":{"id":"r","output":[item]}}),
        t0,
    );
    assert!(tools(&a).is_empty());
}

#[test]
fn the_handoff_mutes_lets_the_agent_say_goodbye_then_hangs_up() {
    let t0 = Instant::now();
    let mut c = control(t0);
    c.on_event(
        &json!({"type":"response.created","response":{"id":"r1"}}),
        t0,
    );
    c.on_event(
        &json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"call_t","name":"trigger_call","arguments":"{}"}),
        t0,
    );
    c.on_event(&json!({"type":"response.done","response":{"id":"r1"}}), t0);
    let a = c.tool_done(
        "call_t",
        ToolResult {
            output: Some(r#"{"status":"calling"}"#.into()),
            handoff: true,
        },
        t0,
    );
    let s = sends(&a);
    assert_eq!(s[0]["type"], "session.update");
    assert_eq!(
        s[0]["session"]["audio"]["input"]["turn_detection"],
        Value::Null
    );
    assert_eq!(s[1]["item"]["type"], "function_call_output");
    assert_eq!(s[2]["type"], "response.create");
    assert!(c.handing_off());
    // The goodbye plays; a late function call is answered without running anything.
    c.on_event(
        &json!({"type":"response.created","response":{"id":"r2"}}),
        t0,
    );
    let a = c.on_event(
        &json!({"type":"response.function_call_arguments.done","response_id":"r2",
        "call_id":"call_x","name":"save_lead","arguments":"{}"}),
        t0,
    );
    assert!(tools(&a).is_empty());
    assert_eq!(sends(&a)[0]["item"]["call_id"], "call_x");
    let t1 = t0 + Duration::from_secs(3);
    let a = c.on_event(&json!({"type":"response.done","response":{"id":"r2"}}), t1);
    assert!(
        !a.contains(&Action::HangUp(WebCallEnd::Handoff)),
        "audio may still be playing"
    );
    let a = c.on_event(
        &json!({"type":"output_audio_buffer.stopped","response_id":"r2"}),
        t1,
    );
    assert_eq!(a, vec![Action::HangUp(WebCallEnd::Handoff)]);
    assert!(c.ended());
}

#[test]
fn without_a_playout_report_the_hangup_comes_after_a_bounded_wait() {
    let t0 = Instant::now();
    let mut c = control(t0);
    c.on_event(
        &json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"call_t","name":"trigger_call","arguments":"{}"}),
        t0,
    );
    c.on_event(&json!({"type":"response.done","response":{"id":"r1"}}), t0);
    c.tool_done(
        "call_t",
        ToolResult {
            output: Some("{}".into()),
            handoff: true,
        },
        t0,
    );
    c.on_event(
        &json!({"type":"response.created","response":{"id":"r2"}}),
        t0,
    );
    c.on_event(&json!({"type":"response.done","response":{"id":"r2"}}), t0);
    assert_eq!(c.next_deadline(), Some(t0 + PLAYOUT_MAX));
    assert!(c
        .tick(t0 + PLAYOUT_MAX - Duration::from_millis(1))
        .is_empty());
    assert_eq!(
        c.tick(t0 + PLAYOUT_MAX),
        vec![Action::HangUp(WebCallEnd::Handoff)]
    );
}

#[test]
fn the_time_limit_waits_for_the_running_response_then_says_goodbye() {
    let t0 = Instant::now();
    let mut c = control(t0);
    c.on_event(
        &json!({"type":"response.created","response":{"id":"r1"}}),
        t0,
    );
    let limit = t0 + Duration::from_secs(300);
    assert_eq!(c.next_deadline(), Some(limit));
    let a = c.tick(limit);
    assert_eq!(sends(&a).len(), 1, "mute only, a response is running");
    let a = c.on_event(
        &json!({"type":"response.done","response":{"id":"r1"}}),
        limit,
    );
    let s = sends(&a);
    assert_eq!(s[0]["type"], "response.create");
    assert_eq!(s[0]["response"]["instructions"], "au revoir");
    c.on_event(
        &json!({"type":"response.created","response":{"id":"r2"}}),
        limit,
    );
    c.on_event(
        &json!({"type":"response.done","response":{"id":"r2"}}),
        limit,
    );
    let a = c.on_event(&json!({"type":"output_audio_buffer.stopped"}), limit);
    assert_eq!(a, vec![Action::HangUp(WebCallEnd::TimeLimit)]);
}

#[test]
fn a_goodbye_that_never_comes_still_ends_the_call() {
    let t0 = Instant::now();
    let mut c = control(t0);
    let limit = t0 + Duration::from_secs(300);
    c.tick(limit);
    assert_eq!(
        c.tick(limit + GOODBYE_MAX),
        vec![Action::HangUp(WebCallEnd::TimeLimit)]
    );
    assert!(c.tick(limit + GOODBYE_MAX * 2).is_empty());
}

#[test]
fn turns_come_out_in_conversation_order_even_when_a_transcript_is_late() {
    let t0 = Instant::now();
    let mut c = control(t0);
    let user = |id: &str| json!({"type":"conversation.item.added","item":{"id":id,"type":"message","role":"user","content":[{"type":"input_audio"}]}});
    let agent = |id: &str| json!({"type":"conversation.item.added","item":{"id":id,"type":"message","role":"assistant","content":[]}});
    c.on_event(&user("u1"), t0);
    c.on_event(&agent("a1"), t0);
    let a = c.on_event(&json!({"type":"response.output_audio_transcript.done","item_id":"a1","transcript":"Bonjour !"}), t0);
    assert!(
        a.is_empty(),
        "the visitor spoke first; their words are not known yet"
    );
    let a = c.on_event(&json!({"type":"conversation.item.input_audio_transcription.completed","item_id":"u1","transcript":" Je suis dentiste. "}), t0);
    let turns: Vec<_> = a
        .iter()
        .filter_map(|x| match x {
            Action::SaveTurn(t) => Some((t.speaker, t.text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        turns,
        vec![
            (Speaker::Visitor, "Je suis dentiste.".into()),
            (Speaker::Agent, "Bonjour !".into())
        ]
    );
    // A failed transcription frees its slot.
    c.on_event(&user("u2"), t0);
    c.on_event(&agent("a2"), t0);
    c.on_event(&json!({"type":"response.output_audio_transcript.done","item_id":"a2","transcript":"Et ensuite ?"}), t0);
    let a = c.on_event(
        &json!({"type":"conversation.item.input_audio_transcription.failed","item_id":"u2"}),
        t0,
    );
    assert_eq!(a.len(), 1);
}

#[test]
fn a_call_another_instance_answered_gets_no_second_output_but_the_response_still_follows() {
    let t0 = Instant::now();
    let mut c = control(t0);
    c.on_event(
        &json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"call_1","name":"save_lead","arguments":"{}"}),
        t0,
    );
    c.on_event(&json!({"type":"response.done","response":{"id":"r1"}}), t0);
    let a = c.tool_done(
        "call_1",
        ToolResult {
            output: None,
            handoff: false,
        },
        t0,
    );
    assert_eq!(sends(&a), vec![json!({"type":"response.create"})]);
}
