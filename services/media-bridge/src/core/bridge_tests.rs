//! Scenario tests for [`Bridge`]: frames in, frames out, time injected.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Value};

use super::*;

const START: &str = r#"{"event":"start","sequence_number":"1","stream_id":"S1",
 "start":{"call_control_id":"v2:abc","call_session_id":"cs","from":"+33100000000","to":"+33600000000",
          "client_state":"b3BhcXVl","media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}}"#;

struct H {
    b: Bridge,
    t0: Instant,
    now: Instant,
}

impl H {
    fn new() -> Self {
        Self::with(BridgeConfig::new("Tu es l'agent Callway."))
    }

    fn with(cfg: BridgeConfig) -> Self {
        let t0 = Instant::now();
        H {
            b: Bridge::new(cfg, t0),
            t0,
            now: t0,
        }
    }

    fn at(&mut self, ms: u64) -> &mut Self {
        self.now = self.t0 + Duration::from_millis(ms);
        self
    }

    fn input(&mut self, input: Input<'_>) -> Vec<Output> {
        self.b.handle(input, self.now);
        std::iter::from_fn(|| self.b.poll_output()).collect()
    }

    fn telnyx(&mut self, frame: &str) -> Vec<Output> {
        self.input(Input::TelnyxText(frame))
    }

    fn openai(&mut self, event: Value) -> Vec<Output> {
        self.input(Input::OpenAiText(&event.to_string()))
    }

    /// OpenAI connected and configured, Telnyx started: greeting requested.
    fn live() -> Self {
        let mut h = H::new();
        h.input(Input::OpenAiConnected);
        h.openai(json!({"type":"session.updated","session":{}}));
        h.telnyx(START);
        assert_eq!(h.b.state(), State::Live);
        h
    }

    fn created(&mut self, id: &str) -> Vec<Output> {
        self.openai(json!({"type":"response.created","response":{"id":id,"status":"in_progress"}}))
    }

    fn delta(&mut self, resp: &str, item: &str, audio: &[u8]) -> Vec<Output> {
        self.openai(
            json!({"type":"response.output_audio.delta","response_id":resp,"item_id":item,
                           "output_index":0,"content_index":0,"delta":B64.encode(audio)}),
        )
    }

    fn done(&mut self, resp: &str) -> Vec<Output> {
        self.openai(json!({"type":"response.done","response":{"id":resp,"status":"completed"}}))
    }

    fn mark_echo(&mut self, name: &str) -> Vec<Output> {
        self.telnyx(&json!({"event":"mark","stream_id":"S1","mark":{"name":name}}).to_string())
    }
}

fn media(seq: u64, bytes: &[u8]) -> String {
    json!({"event":"media","sequence_number":seq.to_string(),"stream_id":"S1",
           "media":{"track":"inbound","chunk":seq.to_string(),"timestamp":"0","payload":B64.encode(bytes)}})
    .to_string()
}

fn openai_events(outs: &[Output]) -> Vec<Value> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToOpenAi(s) => serde_json::from_str(s).ok(),
            _ => None,
        })
        .collect()
}

fn telnyx_frames(outs: &[Output]) -> Vec<Value> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ToTelnyx(s) => serde_json::from_str(s).ok(),
            _ => None,
        })
        .collect()
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

fn media_payloads(frames: &[Value]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter(|f| f["event"] == "media")
        .filter_map(|f| B64.decode(f["media"]["payload"].as_str()?).ok())
        .collect()
}

fn mark_names(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["event"] == "mark")
        .filter_map(|f| Some(f["mark"]["name"].as_str()?.to_owned()))
        .collect()
}

fn hangups(outs: &[Output]) -> Vec<HangupReason> {
    outs.iter()
        .filter_map(|o| match o {
            Output::HangUp { reason } => Some(*reason),
            _ => None,
        })
        .collect()
}

fn audio(ms: usize, byte: u8) -> Vec<u8> {
    vec![byte; ms * 8]
}

// ----- session and greeting ------------------------------------------------------------------

#[test]
fn session_update_is_ga_pcmu_both_ways_with_server_vad_and_end_call() {
    let mut h = H::new();
    let outs = h.input(Input::OpenAiConnected);
    let ev = openai_events(&outs);
    assert_eq!(ev.len(), 1);
    let s = &ev[0]["session"];
    assert_eq!(ev[0]["type"], "session.update");
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["instructions"], "Tu es l'agent Callway.");
    assert_eq!(s["audio"]["input"]["format"], json!({"type":"audio/pcmu"}));
    assert_eq!(s["audio"]["output"]["format"], json!({"type":"audio/pcmu"}));
    assert_eq!(s["audio"]["output"]["voice"], "marin");
    let td = &s["audio"]["input"]["turn_detection"];
    assert_eq!(td["type"], "server_vad");
    assert_eq!(td["create_response"], true);
    assert_eq!(td["interrupt_response"], true);
    assert!(s["audio"]["input"]["transcription"]["model"].is_string());
    let tools = s["tools"].as_array().expect("tools");
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(tools[0]["name"], "end_call");
    assert_eq!(tools[0]["parameters"]["type"], "object");
    assert_eq!(tools[1]["name"], "record_qualification");
    // No beta-shaped keys.
    for beta in [
        "modalities",
        "voice",
        "input_audio_format",
        "turn_detection",
    ] {
        assert!(s.get(beta).is_none(), "beta key {beta}");
    }
}

#[test]
fn greeting_waits_for_both_sides_openai_first() {
    let mut h = H::new();
    h.input(Input::OpenAiConnected);
    let outs = h
        .at(300)
        .openai(json!({"type":"session.updated","session":{}}));
    assert!(of_type(&openai_events(&outs), "response.create").is_empty());
    assert_eq!(h.b.state(), State::Connecting);
    // Phone rings for a while, then is answered.
    let outs = h.at(12_000).telnyx(START);
    assert_eq!(of_type(&openai_events(&outs), "response.create").len(), 1);
    assert_eq!(h.b.state(), State::Live);
    assert_eq!(h.b.call_control_id(), Some("v2:abc"));
}

#[test]
fn greeting_waits_for_both_sides_telnyx_first() {
    let mut h = H::new();
    h.telnyx(r#"{"event":"connected","version":"1.0.0"}"#);
    let outs = h.telnyx(START);
    assert!(openai_events(&outs).is_empty());
    // Caller audio before OpenAI is ready is dropped, not buffered.
    let outs = h.at(20).telnyx(&media(2, &audio(20, 1)));
    assert!(openai_events(&outs).is_empty());
    let outs = h.at(200).input(Input::OpenAiConnected);
    assert!(of_type(&openai_events(&outs), "response.create").is_empty());
    let outs = h
        .at(400)
        .openai(json!({"type":"session.updated","session":{}}));
    assert_eq!(of_type(&openai_events(&outs), "response.create").len(), 1);
    // Only once.
    let outs = h.openai(json!({"type":"session.updated","session":{}}));
    assert!(of_type(&openai_events(&outs), "response.create").is_empty());
    assert_eq!(h.b.stats().inbound_dropped, 1);
}

#[test]
fn greeting_prompt_goes_in_as_a_system_item_not_as_response_instructions() {
    let mut cfg = BridgeConfig::new("x");
    cfg.greeting_prompt = Some("Salue Marie par son prénom.".into());
    let mut h = H::with(cfg);
    h.input(Input::OpenAiConnected);
    h.openai(json!({"type":"session.updated","session":{}}));
    let ev = openai_events(&h.telnyx(START));
    assert_eq!(ev[0]["type"], "conversation.item.create");
    assert_eq!(ev[0]["item"]["role"], "system");
    assert_eq!(ev[1]["type"], "response.create");
    assert!(ev[1].get("response").is_none());
}

// ----- inbound audio -------------------------------------------------------------------------

#[test]
fn inbound_audio_passes_through_unchanged_and_in_order() {
    let mut h = H::live();
    let frames: Vec<Vec<u8>> = (0..6u8)
        .map(|i| {
            (0..160)
                .map(|j| i.wrapping_mul(31).wrapping_add(j as u8))
                .collect()
        })
        .collect();
    // Sequence numbers 2..=7 arrive shuffled, with duplicates (3 while held, 2 and 6 after release).
    let order = [3usize, 3, 2, 4, 2, 6, 5, 7, 6];
    let mut appended = Vec::new();
    for (k, &seq) in order.iter().enumerate() {
        let outs = h
            .at(20 * k as u64)
            .telnyx(&media(seq as u64, &frames[seq - 2]));
        for e in of_type(&openai_events(&outs), "input_audio_buffer.append") {
            appended.push(
                B64.decode(e["audio"].as_str().expect("audio"))
                    .expect("b64"),
            );
        }
    }
    assert_eq!(
        appended, frames,
        "bytes in == bytes appended, in sequence order"
    );
    assert_eq!(h.b.stats().inbound_duplicates, 1);
    assert_eq!(h.b.stats().inbound_late, 2);
    // A straggler behind the release point is dropped.
    let outs = h.telnyx(&media(4, &frames[2]));
    assert!(openai_events(&outs).is_empty());
    assert_eq!(h.b.stats().inbound_late, 3);
}

#[test]
fn a_missing_frame_is_skipped_after_the_reorder_wait() {
    let mut h = H::live();
    h.telnyx(&media(2, &audio(20, 1)));
    let outs = h.at(20).telnyx(&media(4, &audio(20, 3))); // 3 missing
    assert!(openai_events(&outs).is_empty());
    let deadline = h.b.poll_timeout().expect("deadline");
    assert!(deadline <= h.t0 + Duration::from_millis(80));
    h.now = deadline;
    let outs = h.input(Input::Tick);
    assert_eq!(
        of_type(&openai_events(&outs), "input_audio_buffer.append").len(),
        1
    );
    assert_eq!(h.b.stats().inbound_gaps_skipped, 1);
}

#[test]
fn non_media_events_do_not_leave_gaps_and_outbound_track_is_ignored() {
    let mut h = H::live();
    h.telnyx(&media(2, &audio(20, 1)));
    h.telnyx(r#"{"event":"dtmf","sequence_number":"3","stream_id":"S1","dtmf":{"digit":"1"}}"#);
    let outbound = json!({"event":"media","sequence_number":"4","stream_id":"S1",
        "media":{"track":"outbound","chunk":"3","timestamp":"40","payload":B64.encode(audio(20, 9))}});
    assert!(openai_events(&h.telnyx(&outbound.to_string())).is_empty());
    let outs = h.telnyx(&media(5, &audio(20, 2)));
    assert_eq!(
        of_type(&openai_events(&outs), "input_audio_buffer.append").len(),
        1
    );
    assert_eq!(h.b.stats().inbound_gaps_skipped, 0);
}

#[test]
fn inbound_batching_concatenates_frames() {
    let mut cfg = BridgeConfig::new("x");
    cfg.inbound_batch_ms = 40;
    let mut h = H::with(cfg);
    h.input(Input::OpenAiConnected);
    h.openai(json!({"type":"session.updated"}));
    h.telnyx(START);
    assert!(openai_events(&h.telnyx(&media(2, &audio(20, 1)))).is_empty());
    let ev = openai_events(&h.telnyx(&media(3, &audio(20, 2))));
    let bytes = B64
        .decode(ev[0]["audio"].as_str().expect("audio"))
        .expect("b64");
    assert_eq!(bytes, [audio(20, 1), audio(20, 2)].concat());
}

// ----- outbound audio ------------------------------------------------------------------------

#[test]
fn agent_audio_is_rechunked_into_160_byte_frames_with_marks() {
    let mut h = H::live();
    h.created("r1");
    let sent: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect(); // 125 ms
    let mut frames = Vec::new();
    for part in sent.chunks(333) {
        frames.extend(telnyx_frames(&h.delta("r1", "i1", part)));
    }
    frames.extend(telnyx_frames(&h.openai(
        json!({"type":"response.output_audio.done","response_id":"r1","item_id":"i1"}),
    )));
    let payloads = media_payloads(&frames);
    assert!(
        payloads.iter().all(|p| p.len() == 160),
        "every frame is 20 ms"
    );
    assert_eq!(payloads.len(), 7);
    let joined = payloads.concat();
    assert_eq!(&joined[..1000], &sent[..]);
    assert!(
        joined[1000..].iter().all(|&b| b == 0xFF),
        "tail padded with silence"
    );
    // Frames carry no stream_id; a mark follows the item.
    assert!(frames.iter().all(|f| f.get("stream_id").is_none()));
    assert_eq!(
        frames.last().map(|f| f["event"].clone()),
        Some(json!("mark"))
    );
}

#[test]
fn mark_echoes_advance_played_time_and_unknown_marks_are_ignored() {
    let mut h = H::live();
    h.created("r1");
    let names = mark_names(&telnyx_frames(&h.delta("r1", "i1", &audio(600, 0))));
    assert_eq!(names.len(), 3); // every 200 ms
    h.at(250).mark_echo(&names[0]);
    h.at(300).mark_echo("someone-elses-mark");
    // Barge-in at 300 ms: 200 acknowledged + 50 elapsed.
    let outs = h.openai(
        json!({"type":"input_audio_buffer.speech_started","audio_start_ms":1000,"item_id":"u1"}),
    );
    assert_eq!(truncates(&outs)[0]["audio_end_ms"], 250);
}

// ----- barge-in ------------------------------------------------------------------------------

fn speaking(h: &mut H, ms: usize) -> Vec<String> {
    h.created("r1");
    mark_names(&telnyx_frames(&h.delta("r1", "i1", &audio(ms, 7))))
}

fn truncates(outs: &[Output]) -> Vec<Value> {
    of_type(&openai_events(outs), "conversation.item.truncate")
        .into_iter()
        .cloned()
        .collect()
}

#[test]
fn barge_in_clears_and_truncates_at_acknowledged_plus_elapsed() {
    let mut h = H::live();
    let names = speaking(&mut h, 1000); // all queued at t=0; marks at 200..1000
    h.at(420).mark_echo(&names[1]); // 400 ms confirmed at t=420
    let outs = h.at(520).openai(
        json!({"type":"input_audio_buffer.speech_started","audio_start_ms":5000,"item_id":"u2"}),
    );
    let frames = telnyx_frames(&outs);
    assert_eq!(frames, vec![json!({"event":"clear"})]);
    let t = truncates(&outs);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["item_id"], "i1");
    assert_eq!(t[0]["content_index"], 0);
    assert_eq!(t[0]["audio_end_ms"], 500); // 400 acked + 100 elapsed
    assert!(outs.contains(&Output::Metric(Metric::BargeIn {
        item_id: "i1".into(),
        played_ms: 500,
        sent_ms: 1000
    })));
}

#[test]
fn truncation_never_exceeds_the_audio_sent() {
    let mut h = H::live();
    let names = speaking(&mut h, 1000);
    h.at(420).mark_echo(&names[1]);
    // The echo for the last mark is lost; the caller speaks much later.
    let outs = h
        .at(9_000)
        .openai(json!({"type":"input_audio_buffer.speech_started","audio_start_ms":5000}));
    assert_eq!(truncates(&outs)[0]["audio_end_ms"], 1000);
}

#[test]
fn no_truncate_without_audio_sent_and_only_once_per_item() {
    // Response started but no audio yet: nothing to clear or truncate.
    let mut h = H::live();
    h.created("r1");
    let outs = h.openai(json!({"type":"input_audio_buffer.speech_started"}));
    assert!(truncates(&outs).is_empty());
    assert!(telnyx_frames(&outs).is_empty());
    // Sub-frame audio that never reached Telnyx does not count as sent either.
    let mut h = H::live();
    h.created("r1");
    h.delta("r1", "i1", &[0u8; 100]);
    let outs = h.openai(json!({"type":"input_audio_buffer.speech_started"}));
    assert!(truncates(&outs).is_empty());

    let mut h = H::live();
    speaking(&mut h, 1000);
    let first = h
        .at(300)
        .openai(json!({"type":"input_audio_buffer.speech_started"}));
    assert_eq!(truncates(&first).len(), 1);
    let second = h
        .at(600)
        .openai(json!({"type":"input_audio_buffer.speech_started"}));
    assert!(truncates(&second).is_empty());
    assert!(telnyx_frames(&second).is_empty());
}

#[test]
fn audio_already_played_is_not_cleared() {
    let mut h = H::live();
    let names = speaking(&mut h, 400);
    h.done("r1");
    h.at(450).mark_echo(names.last().expect("mark"));
    let outs = h
        .at(2000)
        .openai(json!({"type":"input_audio_buffer.speech_started"}));
    assert!(truncates(&outs).is_empty());
    assert!(telnyx_frames(&outs).is_empty());
}

#[test]
fn late_deltas_of_the_cancelled_response_are_dropped() {
    let mut h = H::live();
    speaking(&mut h, 200);
    h.at(100)
        .openai(json!({"type":"input_audio_buffer.speech_started"}));
    let outs = h.delta("r1", "i1", &audio(200, 1));
    assert!(telnyx_frames(&outs).is_empty());
    h.openai(json!({"type":"response.done","response":{"id":"r1","status":"cancelled"}}));
    assert_eq!(h.b.stats().outbound_deltas_dropped, 1);
    // Marks flushed by the clear come back and are ignored.
    let outs = h.mark_echo("cw-1");
    assert!(
        telnyx_frames(&outs).is_empty() && openai_events(&outs).is_empty(),
        "{outs:?}"
    );
    // The next response plays normally.
    h.at(900).created("r2");
    let outs = h.delta("r2", "i2", &audio(40, 2));
    assert_eq!(media_payloads(&telnyx_frames(&outs)).len(), 2);
}

// ----- end_call and failures -----------------------------------------------------------------

#[test]
fn end_call_answers_the_tool_then_hangs_up_after_the_goodbye_played() {
    let mut h = H::live();
    h.created("r1");
    h.delta("r1", "i1", &audio(300, 5)); // "Au revoir !"
    let outs = h.openai(json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "item_id":"fc1","output_index":1,"call_id":"call_1","name":"end_call","arguments":"{\"reason\":\"completed\"}"}));
    let events = openai_events(&outs);
    let out_items = of_type(&events, "conversation.item.create");
    assert_eq!(out_items.len(), 1);
    assert_eq!(out_items[0]["item"]["type"], "function_call_output");
    assert_eq!(out_items[0]["item"]["call_id"], "call_1");
    assert!(of_type(&openai_events(&outs), "response.create").is_empty());
    assert_eq!(h.b.state(), State::Ending);
    // The same call described again (output_item.done style duplicate) is not answered twice.
    let dup = h.openai(
        json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "item_id":"fc1","call_id":"call_1","name":"end_call","arguments":"{}"}),
    );
    assert!(openai_events(&dup).is_empty());
    let outs = h.done("r1");
    assert!(hangups(&outs).is_empty());
    let names = mark_names(&telnyx_frames(&outs));
    // Caller audio is no longer forwarded while the goodbye plays.
    assert!(openai_events(&h.telnyx(&media(2, &audio(20, 1)))).is_empty());
    let outs = h.at(320).mark_echo(names.last().expect("final mark"));
    assert_eq!(hangups(&outs), vec![HangupReason::AgentEnded]);
    assert!(outs.contains(&Output::CloseOpenAi));
    assert_eq!(h.b.state(), State::Ended);
}

#[test]
fn a_valid_qualification_is_kept_and_an_invalid_one_is_sent_back_to_the_model() {
    let mut h = H::live();
    h.created("r1");
    let slot = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let args = json!({"activity":"Cabinet dentaire","call_volume":"40 par jour",
        "main_need":"Filtrer les appels","interest_level":"high","next_step":"meeting",
        "preferred_slot": slot})
    .to_string();
    let outs = h.openai(
        json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"q1","name":"record_qualification","arguments": args}),
    );
    let kept: Vec<_> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Qualification(q) => Some(q.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].activity, "Cabinet dentaire");
    let out = of_type(&openai_events(&outs), "conversation.item.create")[0].clone();
    assert_eq!(out["item"]["output"], json!({"ok": true}).to_string());
    // A slot in the past: refused, said back, nothing kept; the model gets a new turn.
    let bad = json!({"activity":"a","call_volume":"b","main_need":"c","interest_level":"low",
        "next_step":"callback","preferred_slot":"2020-01-01T10:00:00Z"})
    .to_string();
    let outs = h.openai(
        json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"q2","name":"record_qualification","arguments": bad}),
    );
    assert!(!outs.iter().any(|o| matches!(o, Output::Qualification(_))));
    let out = of_type(&openai_events(&outs), "conversation.item.create")[0].clone();
    assert!(out["item"]["output"]
        .as_str()
        .unwrap()
        .contains("preferred_slot"));
    assert!(hangups(&outs).is_empty());
}

#[test]
fn transfer_is_offered_only_when_enabled_and_a_failure_notice_gets_a_new_turn() {
    let tools = |cfg: BridgeConfig| {
        let mut h = H::with(cfg);
        let ev = openai_events(&h.input(Input::OpenAiConnected));
        ev[0]["session"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let mut cfg = BridgeConfig::new("x");
    assert!(!tools(cfg.clone()).contains(&"transfer_to_human".to_owned()));
    cfg.transfer = true;
    assert!(tools(cfg.clone()).contains(&"transfer_to_human".to_owned()));

    let mut h = H::with(cfg);
    h.input(Input::OpenAiConnected);
    h.openai(json!({"type":"session.updated","session":{}}));
    h.telnyx(START);
    h.created("r1");
    let outs = h.openai(
        json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"t1","name":"transfer_to_human","arguments":"{\"reason\":\"veut un humain\"}"}),
    );
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Transfer { reason } if reason == "veut un humain")));
    assert!(
        hangups(&outs).is_empty(),
        "the call stays up while the human is dialled"
    );
    h.done("r1");
    // The human did not answer: the agent hears it as a system message and gets a turn.
    let outs = h.input(Input::Notice("Le conseiller n'a pas pu prendre l'appel."));
    let ev = openai_events(&outs);
    assert_eq!(ev[0]["item"]["role"], "system");
    assert!(ev.iter().any(|e| e["type"] == "response.create"));
}

#[test]
fn end_call_hangs_up_at_the_drain_deadline_if_marks_never_come_back() {
    let mut h = H::live();
    h.created("r1");
    h.delta("r1", "i1", &audio(300, 5));
    h.openai(
        json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"c","name":"end_call","arguments":"{}"}),
    );
    h.done("r1");
    let deadline = h.b.poll_timeout().expect("deadline");
    assert_eq!(deadline, h.t0 + Duration::from_secs(20));
    h.now = deadline;
    assert_eq!(
        hangups(&h.input(Input::Tick)),
        vec![HangupReason::AgentEnded]
    );
}

#[test]
fn openai_close_or_fatal_error_hangs_up() {
    let mut h = H::live();
    speaking(&mut h, 500);
    let outs = h.input(Input::OpenAiClosed {
        code: Some(1001),
        reason: "going away",
    });
    assert_eq!(hangups(&outs), vec![HangupReason::OpenAiFailed]);
    assert!(telnyx_frames(&outs).contains(&json!({"event":"clear"})));
    assert!(!outs.contains(&Output::CloseOpenAi), "already closed");
    assert_eq!(h.b.state(), State::Ended);

    let mut h = H::live();
    let outs = h.openai(json!({"type":"error","error":{"type":"invalid_request_error",
        "code":"session_expired","message":"Your session hit the maximum duration of 60 minutes."}}));
    assert_eq!(hangups(&outs), vec![HangupReason::OpenAiFailed]);
    assert!(outs.contains(&Output::CloseOpenAi));

    // A recoverable error changes nothing.
    let mut h = H::live();
    let outs = h.openai(
        json!({"type":"error","error":{"type":"invalid_request_error",
        "code":"conversation_already_has_active_response","message":"busy"}}),
    );
    assert!(hangups(&outs).is_empty());
    assert_eq!(h.b.state(), State::Live);

    // Our session.update rejected: the model would run with the wrong audio format.
    let mut h = H::new();
    h.input(Input::OpenAiConnected);
    let outs = h.openai(
        json!({"type":"error","error":{"type":"invalid_request_error",
        "code":"unknown_parameter","message":"Unknown parameter","event_id":"cw_session_update"}}),
    );
    assert_eq!(hangups(&outs), vec![HangupReason::OpenAiFailed]);
}

#[test]
fn openai_not_ready_in_time_after_pickup_hangs_up() {
    let mut h = H::new();
    h.telnyx(START);
    let deadline = h.b.poll_timeout().expect("deadline");
    assert_eq!(deadline, h.t0 + Duration::from_secs(8));
    h.now = deadline;
    assert_eq!(
        hangups(&h.input(Input::Tick)),
        vec![HangupReason::OpenAiFailed]
    );
}

#[test]
fn openai_silent_after_the_turn_hangs_up() {
    let mut h = H::live();
    h.created("r0");
    h.done("r0");
    h.at(1000)
        .openai(json!({"type":"input_audio_buffer.speech_stopped","audio_end_ms":900}));
    h.at(15_999);
    assert!(hangups(&h.input(Input::Tick)).is_empty());
    h.at(16_000);
    assert_eq!(
        hangups(&h.input(Input::Tick)),
        vec![HangupReason::OpenAiFailed]
    );
}

#[test]
fn failure_message_hook_plays_before_hanging_up() {
    let mut cfg = BridgeConfig::new("x");
    cfg.failure_message_pcmu = Some(audio(100, 0x55));
    let mut h = H::with(cfg);
    h.input(Input::OpenAiConnected);
    h.openai(json!({"type":"session.updated"}));
    h.telnyx(START);
    let outs = h.input(Input::OpenAiClosed {
        code: None,
        reason: "reset",
    });
    assert!(hangups(&outs).is_empty());
    let frames = telnyx_frames(&outs);
    assert_eq!(media_payloads(&frames).concat(), audio(100, 0x55));
    let name = mark_names(&frames).pop().expect("mark");
    let outs = h.at(150).mark_echo(&name);
    assert_eq!(hangups(&outs), vec![HangupReason::OpenAiFailed]);
}

#[test]
fn telnyx_stop_or_close_closes_openai() {
    let mut h = H::live();
    let outs = h.telnyx(r#"{"event":"stop","sequence_number":"9","stream_id":"S1","stop":{"call_control_id":"v2:abc"}}"#);
    assert_eq!(
        outs.iter().filter(|o| **o == Output::CloseOpenAi).count(),
        1
    );
    assert!(hangups(&outs).is_empty());
    assert_eq!(h.b.state(), State::Ended);
    assert_eq!(h.b.poll_timeout(), None);
    // Nothing happens after the end.
    assert!(h.telnyx(&media(10, &audio(20, 1))).is_empty());

    let mut h = H::live();
    let outs = h.input(Input::TelnyxClosed);
    assert!(outs.contains(&Output::CloseOpenAi));
}

#[test]
fn malformed_frames_are_counted_and_ignored() {
    let mut h = H::live();
    for junk in [
        "",
        "{",
        "null",
        r#"{"event":"media"}"#,
        r#"{"event":"media","media":{"payload":"***"}}"#,
        r#"{"event":"teleport"}"#,
    ] {
        let outs = h.telnyx(junk);
        assert!(
            outs.iter().all(|o| matches!(o, Output::Log { .. })),
            "{junk:?}"
        );
    }
    for junk in ["", "[]", r#"{"type":"response.output_audio.delta"}"#] {
        h.input(Input::OpenAiText(junk));
    }
    h.openai(
        json!({"type":"response.output_audio.delta","response_id":"r","item_id":"i","delta":"!!"}),
    );
    let s = h.b.stats();
    assert_eq!(s.telnyx_malformed, 4);
    assert_eq!(s.telnyx_unknown, 1);
    assert_eq!(s.inbound_bad_payload, 1);
    assert_eq!(s.openai_malformed, 3);
    assert_eq!(h.b.state(), State::Live);
}

#[test]
fn a_non_pcmu_stream_is_hung_up() {
    let mut h = H::new();
    h.input(Input::OpenAiConnected);
    let pcma = START.replace("\"PCMU\"", "\"PCMA\"");
    let outs = h.telnyx(&pcma);
    assert_eq!(hangups(&outs), vec![HangupReason::UnsupportedMediaFormat]);
    assert!(outs.contains(&Output::CloseOpenAi));
    let mut h = H::new();
    let wide = START.replace("8000", "16000");
    assert_eq!(
        hangups(&h.telnyx(&wide)),
        vec![HangupReason::UnsupportedMediaFormat]
    );
}

#[test]
fn no_media_start_in_time_gives_up() {
    let mut h = H::new();
    h.input(Input::OpenAiConnected);
    h.openai(json!({"type":"session.updated"}));
    assert_eq!(h.b.poll_timeout(), Some(h.t0 + Duration::from_secs(90)));
    h.at(90_000);
    let outs = h.input(Input::Tick);
    assert_eq!(hangups(&outs), vec![HangupReason::NoMedia]);
    assert!(outs.contains(&Output::CloseOpenAi));
}

#[test]
fn max_duration_says_goodbye_then_hangs_up() {
    let mut cfg = BridgeConfig::new("x");
    cfg.max_call = Duration::from_secs(60);
    let mut h = H::with(cfg);
    h.input(Input::OpenAiConnected);
    h.openai(json!({"type":"session.updated"}));
    h.telnyx(START);
    h.at(59_000).created("r1");
    h.delta("r1", "i1", &audio(2000, 1)); // agent mid-sentence
    assert_eq!(h.b.poll_timeout(), Some(h.t0 + Duration::from_secs(60)));
    let outs = h.at(60_000).input(Input::Tick);
    let ev = openai_events(&outs);
    let types: Vec<&str> = ev.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types,
        vec![
            "response.cancel",
            "conversation.item.truncate",
            "conversation.item.create",
            "response.create"
        ]
    );
    assert_eq!(ev[1]["audio_end_ms"], 1000);
    assert_eq!(ev[3]["response"]["tool_choice"], "none");
    assert_eq!(h.b.state(), State::Ending);
    // The cancelled response's audio is dropped; the goodbye plays.
    assert!(telnyx_frames(&h.delta("r1", "i1", &audio(100, 1))).is_empty());
    h.openai(json!({"type":"response.done","response":{"id":"r1","status":"cancelled"}}));
    h.at(60_300).created("r2");
    assert_eq!(
        media_payloads(&telnyx_frames(&h.delta("r2", "i2", &audio(500, 2)))).len(),
        25
    );
    let names = mark_names(&telnyx_frames(&h.done("r2")));
    let outs = h.at(60_900).mark_echo(names.last().expect("mark"));
    assert_eq!(hangups(&outs), vec![HangupReason::MaxDuration]);
}

// ----- metrics -------------------------------------------------------------------------------

#[test]
fn turn_latency_and_first_audio_come_from_the_injected_times() {
    let mut h = H::new();
    h.input(Input::OpenAiConnected);
    h.openai(json!({"type":"session.updated"}));
    h.at(1_000).telnyx(START);
    h.at(1_100).created("greet");
    let outs = h.at(1_450).delta("greet", "g1", &audio(40, 1));
    assert!(outs.contains(&Output::Metric(Metric::FirstAgentAudio {
        latency: Duration::from_millis(450)
    })));
    h.done("greet");
    // The caller answers; their turn ends at 5.0 s.
    h.at(3_000)
        .openai(json!({"type":"input_audio_buffer.speech_started"}));
    h.at(5_000)
        .openai(json!({"type":"input_audio_buffer.speech_stopped","audio_end_ms":4000}));
    h.at(5_300).created("r2");
    let outs = h.at(5_300).delta("r2", "i2", &[1u8; 100]); // no full frame yet
    assert!(!outs.iter().any(|o| matches!(o, Output::Metric(_))));
    let outs = h.at(5_620).delta("r2", "i2", &[1u8; 100]);
    assert_eq!(
        outs.iter()
            .filter(|o| matches!(o, Output::Metric(_)))
            .collect::<Vec<_>>(),
        vec![&Output::Metric(Metric::TurnLatency {
            response_id: "r2".into(),
            latency: Duration::from_millis(620)
        })]
    );
    // Only the first frame of the turn counts.
    let outs = h.at(5_700).delta("r2", "i2", &audio(40, 1));
    assert!(!outs.iter().any(|o| matches!(o, Output::Metric(_))));
}

#[test]
fn unknown_tools_get_an_error_output_and_a_follow_up_response() {
    let mut h = H::live();
    h.created("r1");
    let outs = h.openai(
        json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"c9","name":"book_flight","arguments":"{}"}),
    );
    let ev = openai_events(&outs);
    assert_eq!(ev[0]["item"]["type"], "function_call_output");
    assert!(
        of_type(&ev, "response.create").is_empty(),
        "wait for response.done"
    );
    let outs = h.done("r1");
    assert_eq!(of_type(&openai_events(&outs), "response.create").len(), 1);
}

#[test]
fn a_long_caller_turn_is_not_mistaken_for_a_silent_openai() {
    let mut h = H::live();
    h.created("r0");
    h.done("r0");
    h.at(1000)
        .openai(json!({"type":"input_audio_buffer.speech_stopped"}));
    // The caller goes on talking for 30 s before the model answers.
    h.at(1200)
        .openai(json!({"type":"input_audio_buffer.speech_started"}));
    h.at(31_200);
    assert!(hangups(&h.input(Input::Tick)).is_empty());
    assert_eq!(h.b.state(), State::Live);
}

#[test]
fn openai_closing_during_the_goodbye_does_not_cut_it() {
    let mut h = H::live();
    h.created("r1");
    h.delta("r1", "i1", &audio(300, 5));
    h.openai(
        json!({"type":"response.function_call_arguments.done","response_id":"r1",
        "call_id":"c","name":"end_call","arguments":"{}"}),
    );
    let names = mark_names(&telnyx_frames(&h.done("r1")));
    let outs = h.input(Input::OpenAiClosed {
        code: Some(1000),
        reason: "bye",
    });
    assert!(hangups(&outs).is_empty());
    assert!(!telnyx_frames(&outs).contains(&json!({"event":"clear"})));
    let outs = h.at(310).mark_echo(names.last().expect("mark"));
    assert_eq!(hangups(&outs), vec![HangupReason::AgentEnded]);
    assert!(!outs.contains(&Output::CloseOpenAi));
}
