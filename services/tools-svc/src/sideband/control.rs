//! The sans-IO controller of one web call's sideband: server events and tool results in, client
//! events and actions out, time as an input. It runs the model's function calls exactly once
//! (`response.function_call_arguments.done`, `response.output_item.done` and `response.done` may
//! all carry the same call), answers each with a `function_call_output` and, once every call of a
//! response is answered and the response is done, one `response.create`. It keeps both sides'
//! transcripts in conversation order, mutes the session server side at the hand-off, lets the
//! agent say goodbye, and asks for the hang-up — the phone is dialled only after it.

use callway_core::transcript::{Speaker, Turn};
use callway_core::web_call::WebCallEnd;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How long the goodbye may take once asked for (then we hang up regardless).
pub const GOODBYE_MAX: Duration = Duration::from_secs(20);
/// After the goodbye response is done, how long its audio may still play (WebRTC reports
/// `output_audio_buffer.stopped` when it has).
pub const PLAYOUT_MAX: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A client event to send on the sideband.
    Send(Value),
    /// Run this tool; answer with [`Control::tool_done`].
    RunTool {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// A finished utterance, in conversation order.
    SaveTurn(Turn),
    /// End the web call now, for this reason.
    HangUp(WebCallEnd),
}

/// What a tool produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The `function_call_output` text (our JSON); `None` when another instance already ran and
    /// answered this call (one output per call, whoever holds the sideband).
    pub output: Option<String>,
    /// True when this output starts the hand-off (a callback was prepared).
    pub handoff: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Live,
    /// Muted; waiting to ask for the goodbye (a response is still active).
    Closing {
        reason: WebCallEnd,
        since: Instant,
    },
    /// The goodbye response was asked for; `done_at` once it is done.
    Goodbye {
        reason: WebCallEnd,
        since: Instant,
        done_at: Option<Instant>,
    },
    Ended,
}

#[derive(Default)]
struct ResponseCalls {
    pending: usize,
    done: bool,
    followed_up: bool,
}

/// One slot of the transcript, in conversation order; `None` until its text is known.
struct Slot {
    item_id: String,
    speaker: Speaker,
    text: Option<Option<Turn>>,
}

pub struct Control {
    deadline: Instant,
    time_limit_goodbye: String,
    phase: Phase,
    active_response: Option<String>,
    pending_create: bool,
    handled_calls: HashSet<String>,
    /// call_id → response_id
    call_response: HashMap<String, String>,
    responses: HashMap<String, ResponseCalls>,
    handoff_requested: bool,
    slots: VecDeque<Slot>,
    out: Vec<Action>,
}

impl Control {
    pub fn new(deadline: Instant, time_limit_goodbye: String) -> Self {
        Control {
            deadline,
            time_limit_goodbye,
            phase: Phase::Live,
            active_response: None,
            pending_create: false,
            handled_calls: HashSet::new(),
            call_response: HashMap::new(),
            responses: HashMap::new(),
            handoff_requested: false,
            slots: VecDeque::new(),
            out: Vec::new(),
        }
    }

    #[cfg(test)]
    pub fn ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// True once the hand-off started (the callback is prepared; the call must go out even if
    /// the sideband is lost from here on).
    pub fn handing_off(&self) -> bool {
        self.handoff_requested
    }

    /// When to call [`Control::tick`] if nothing else happens.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Live => Some(self.deadline),
            Phase::Closing { since, .. } => Some(since + GOODBYE_MAX),
            Phase::Goodbye { since, done_at, .. } => Some(match done_at {
                Some(d) => (d + PLAYOUT_MAX).min(since + GOODBYE_MAX),
                None => since + GOODBYE_MAX,
            }),
            Phase::Ended => None,
        }
    }

    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Live if now >= self.deadline => self.close(WebCallEnd::TimeLimit, now),
            Phase::Closing { reason, since } if now >= since + GOODBYE_MAX => self.hang_up(reason),
            Phase::Goodbye {
                reason,
                since,
                done_at,
            } if now >= since + GOODBYE_MAX || done_at.is_some_and(|d| now >= d + PLAYOUT_MAX) => {
                self.hang_up(reason)
            }
            _ => {}
        }
        std::mem::take(&mut self.out)
    }

    /// One server event from the sideband.
    pub fn on_event(&mut self, ev: &Value, now: Instant) -> Vec<Action> {
        if self.phase == Phase::Ended {
            return Vec::new();
        }
        let s = |k: &str| ev.get(k).and_then(Value::as_str).unwrap_or("");
        match s("type") {
            "conversation.item.added" | "conversation.item.created" => {
                self.on_item_added(&ev["item"])
            }
            "conversation.item.input_audio_transcription.completed" => {
                self.fill(s("item_id"), Turn::new(Speaker::Visitor, s("transcript")))
            }
            "conversation.item.input_audio_transcription.failed" => self.fill(s("item_id"), None),
            "response.output_audio_transcript.done" => {
                self.fill(s("item_id"), Turn::new(Speaker::Agent, s("transcript")))
            }
            "response.output_text.done" => {
                self.fill(s("item_id"), Turn::new(Speaker::Agent, s("text")))
            }
            "response.created" => {
                let id = ev["response"]["id"].as_str().unwrap_or("_").to_owned();
                self.active_response = Some(id);
            }
            "response.function_call_arguments.done" => {
                self.function_call(s("call_id"), s("name"), s("arguments"), s("response_id"))
            }
            "response.output_item.done" => {
                if let Some((call_id, name, args)) = finished_call(&ev["item"]) {
                    self.function_call(call_id, name, args, s("response_id"));
                }
            }
            "response.done" => self.response_done(&ev["response"], now),
            "output_audio_buffer.stopped" | "output_audio_buffer.cleared" => {
                if let Phase::Goodbye {
                    reason,
                    done_at: Some(_),
                    ..
                } = self.phase
                {
                    self.hang_up(reason);
                }
            }
            _ => {}
        }
        std::mem::take(&mut self.out)
    }

    /// A tool finished (in any order).
    pub fn tool_done(&mut self, call_id: &str, result: ToolResult, now: Instant) -> Vec<Action> {
        if self.phase == Phase::Ended {
            return Vec::new();
        }
        if result.handoff && !self.handoff_requested {
            self.handoff_requested = true;
            // Muted server side first: nothing the visitor says from now on starts a response.
            self.out.push(Action::Send(mute()));
        }
        if let Some(output) = result.output {
            self.out.push(Action::Send(json!({
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output}
            })));
        }
        if let Some(rid) = self.call_response.get(call_id).cloned() {
            if let Some(r) = self.responses.get_mut(&rid) {
                r.pending = r.pending.saturating_sub(1);
            }
            self.maybe_follow_up(&rid, now);
        }
        std::mem::take(&mut self.out)
    }

    fn on_item_added(&mut self, item: &Value) {
        let id = item["id"].as_str().unwrap_or("");
        if id.is_empty() || item["type"] != "message" || self.slots.iter().any(|s| s.item_id == id)
        {
            return;
        }
        let speaker = match item["role"].as_str() {
            Some("user") => Speaker::Visitor,
            Some("assistant") => Speaker::Agent,
            _ => return,
        };
        // A user item created with text (not audio) already carries its words.
        let text = item["content"][0]["text"]
            .as_str()
            .map(|t| Turn::new(speaker, t));
        self.slots.push_back(Slot {
            item_id: id.to_owned(),
            speaker,
            text,
        });
        self.flush_turns();
    }

    fn fill(&mut self, item_id: &str, turn: Option<Turn>) {
        match self.slots.iter_mut().find(|s| s.item_id == item_id) {
            Some(slot) => slot.text = Some(turn.filter(|t| t.speaker == slot.speaker)),
            // No item event seen (it came before we attached): keep the words anyway.
            None => {
                if let Some(t) = turn {
                    self.out.push(Action::SaveTurn(t));
                }
            }
        }
        self.flush_turns();
    }

    /// Emits finished turns from the front; a slot still waiting for its transcript holds the
    /// ones after it, unless too many are waiting (a transcript that never comes).
    fn flush_turns(&mut self) {
        loop {
            match self.slots.front() {
                Some(s) if s.text.is_some() => {
                    if let Some(Some(Some(t))) = self.slots.pop_front().map(|s| s.text) {
                        self.out.push(Action::SaveTurn(t));
                    }
                }
                Some(_) if self.slots.len() > 8 => {
                    self.slots.pop_front();
                }
                _ => return,
            }
        }
    }

    fn function_call(&mut self, call_id: &str, name: &str, arguments: &str, response_id: &str) {
        if call_id.is_empty() || !self.handled_calls.insert(call_id.to_owned()) {
            return;
        }
        let rid = if response_id.is_empty() {
            self.active_response.clone().unwrap_or_else(|| "_".into())
        } else {
            response_id.to_owned()
        };
        self.call_response.insert(call_id.to_owned(), rid.clone());
        self.responses.entry(rid).or_default().pending += 1;
        if self.phase != Phase::Live {
            // Closing: no new side effects; answer so the model is not left waiting.
            self.out.push(Action::Send(json!({
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id,
                         "output": r#"{"error":{"code":"session_ending","message":"La session se termine."}}"#}
            })));
            return;
        }
        self.out.push(Action::RunTool {
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        });
    }

    fn response_done(&mut self, response: &Value, now: Instant) {
        let rid = response["id"].as_str().unwrap_or("_").to_owned();
        if self
            .active_response
            .as_deref()
            .is_none_or(|a| a == rid || a == "_")
        {
            self.active_response = None;
        }
        if let Some(items) = response["output"].as_array() {
            for item in items {
                if let Some((call_id, name, args)) = finished_call(item) {
                    self.function_call(call_id, name, args, &rid);
                }
            }
        }
        if let Phase::Goodbye {
            reason,
            since,
            done_at: None,
        } = self.phase
        {
            self.phase = Phase::Goodbye {
                reason,
                since,
                done_at: Some(now),
            };
            return;
        }
        if let Some(r) = self.responses.get_mut(&rid) {
            r.done = true;
        }
        self.maybe_follow_up(&rid, now);
        if self.active_response.is_none() {
            if let Phase::Closing { reason, .. } = self.phase {
                self.ask_goodbye(reason, now);
            } else if self.pending_create {
                self.pending_create = false;
                self.out
                    .push(Action::Send(json!({"type": "response.create"})));
            }
        }
    }

    /// After every output of a response's calls is sent and the response is done: exactly one
    /// `response.create` (the goodbye, when a hand-off started).
    fn maybe_follow_up(&mut self, rid: &str, now: Instant) {
        let Some(r) = self.responses.get_mut(rid) else {
            return;
        };
        if !r.done || r.pending > 0 || r.followed_up {
            return;
        }
        r.followed_up = true;
        if self.handoff_requested && self.phase == Phase::Live {
            self.phase = Phase::Closing {
                reason: WebCallEnd::Handoff,
                since: now,
            };
        }
        match self.phase {
            Phase::Closing { reason, .. } if self.active_response.is_none() => {
                self.ask_goodbye(reason, now)
            }
            Phase::Live if self.active_response.is_none() => self
                .out
                .push(Action::Send(json!({"type": "response.create"}))),
            Phase::Live => self.pending_create = true,
            _ => {}
        }
    }

    /// The time limit: mute, then the polite closing line once no response is running.
    fn close(&mut self, reason: WebCallEnd, now: Instant) {
        self.out.push(Action::Send(mute()));
        self.phase = Phase::Closing { reason, since: now };
        if self.active_response.is_none() {
            self.ask_goodbye(reason, now);
        }
    }

    fn ask_goodbye(&mut self, reason: WebCallEnd, now: Instant) {
        let create = match reason {
            // The model says goodbye from the tool's output (its instructions say how).
            WebCallEnd::Handoff => json!({"type": "response.create"}),
            _ => json!({"type": "response.create", "response": {
                "instructions": self.time_limit_goodbye, "tool_choice": "none"}}),
        };
        self.out.push(Action::Send(create));
        self.phase = Phase::Goodbye {
            reason,
            since: now,
            done_at: None,
        };
    }

    fn hang_up(&mut self, reason: WebCallEnd) {
        self.phase = Phase::Ended;
        self.out.push(Action::HangUp(reason));
    }
}

/// `session.update` turning server VAD off: the visitor's audio no longer starts responses.
fn mute() -> Value {
    json!({"type": "session.update", "session": {
        "type": "realtime", "audio": {"input": {"turn_detection": null}}}})
}

fn finished_call(item: &Value) -> Option<(&str, &str, &str)> {
    if item["type"] != "function_call" {
        return None;
    }
    // An interrupted response leaves its call "incomplete": not a request to act on.
    if item["status"].as_str().is_some_and(|s| s != "completed") {
        return None;
    }
    Some((
        item["call_id"].as_str()?,
        item["name"].as_str()?,
        item["arguments"].as_str().unwrap_or("{}"),
    ))
}
