//! Responses: picking the scripted step, generating audio/transcript faster than real time,
//! function calls, cancellation, and (WebRTC) the output audio buffer.

use super::{Engine, Output, Rejection};
use crate::errors::FieldError;
use crate::ids::new_id;
use crate::recording::{ToolCallRecord, TransportKind};
use crate::scenario::Trigger;
use crate::session_config::{AudioFormat, SessionConfig, UpdateLocks};
use crate::validate::{self as v, join};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
enum Part {
    Say { text: String, wav: Option<PathBuf> },
    Call { name: String, arguments: String },
}

#[derive(Debug)]
struct SayProgress {
    item_id: String,
    output_index: usize,
    text: String,
    /// PCM at `rate` (empty for text-only responses, which use a virtual 1 kHz timeline).
    pcm: Vec<i16>,
    total: usize,
    rate: u32,
    sent: usize,
    words: Vec<String>,
    words_sent: usize,
    started: Duration,
    transcript: String,
    stopped: bool,
}

/// The response being generated.
#[derive(Debug)]
pub(crate) struct ActiveResponse {
    pub(crate) id: String,
    in_conversation: bool,
    audio: bool,
    out_format: AudioFormat,
    voice: Value,
    max_output_tokens: Value,
    metadata: Value,
    parts: VecDeque<Part>,
    current: Option<SayProgress>,
    next_output_index: usize,
    output: Vec<Value>,
    audio_ms: u64,
    text_chars: u64,
}

/// WebRTC playback of the output audio buffer (real time, from the first chunk).
#[derive(Debug)]
pub(crate) struct Playback {
    response_id: String,
    start: Duration,
    queued_ms: f64,
    /// (item id, offset ms, length ms) in playback order.
    segments: Vec<(String, f64, f64)>,
}

enum EndReason {
    Completed,
    Cancelled(&'static str),
}

const RESPONSE_KEYS: &[&str] = &[
    "output_modalities",
    "instructions",
    "audio",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "max_output_tokens",
    "conversation",
    "metadata",
    "prompt",
    "input",
];

impl Engine {
    pub(super) fn on_response_create(
        &mut self,
        obj: &v::Obj,
        now: Duration,
    ) -> Result<(), Rejection> {
        if let Some(r) = &self.response {
            return Err(FieldError::new(
                "conversation_already_has_active_response",
                format!("Conversation already has an active response in progress: {}. Wait until the response is finished before creating a new one.", r.id),
                None,
            )
            .into());
        }
        let params = match obj.get("response") {
            None | Some(Value::Null) => None,
            Some(p) => Some(v::object(p, "response")?.clone()),
        };
        self.start_response_checked(now, params.as_ref())?;
        Ok(())
    }

    pub(super) fn on_response_cancel(&mut self, obj: &v::Obj) -> Result<(), Rejection> {
        let wanted = match obj.get("response_id") {
            None | Some(Value::Null) => None,
            Some(x) => Some(v::string(x, "response_id")?.to_string()),
        };
        let active = self.response.as_ref().map(|r| r.id.clone());
        match (active, wanted) {
            (Some(a), Some(w)) if a != w => {}
            (Some(_), _) => {
                self.end_response(EndReason::Cancelled("client_cancelled"));
                return Ok(());
            }
            _ => {}
        }
        Err(FieldError::new(
            "response_cancel_not_active",
            "Cancellation failed: no active response found",
            None,
        )
        .into())
    }

    /// Server VAD's automatic response (no parameters).
    pub(super) fn start_response(&mut self, now: Duration, params: Option<&v::Obj>) {
        if let Err(e) = self.start_response_checked(now, params) {
            self.emit_error(e, None);
        }
    }

    fn start_response_checked(
        &mut self,
        now: Duration,
        params: Option<&v::Obj>,
    ) -> Result<(), FieldError> {
        let (cfg, in_conversation, metadata) = self.response_config(params)?;
        let id = new_id("resp_");
        let parts = if in_conversation {
            self.plan_parts(&cfg)
        } else {
            VecDeque::from([Part::Say {
                text: self.scenario.fallback_say.clone(),
                wav: None,
            }])
        };
        self.responses_started += 1;
        let r = ActiveResponse {
            id: id.clone(),
            in_conversation,
            audio: cfg.audio_out(),
            out_format: cfg.output_format,
            voice: cfg.voice.clone(),
            max_output_tokens: cfg.max_output_tokens.clone(),
            metadata,
            parts,
            current: None,
            next_output_index: 0,
            output: vec![],
            audio_ms: 0,
            text_chars: 0,
        };
        let body = self.response_json(&r, "in_progress", Value::Null, Value::Null);
        self.response = Some(r);
        self.emit("response.created", json!({ "response": body }));
        self.next_part(now);
        Ok(())
    }

    /// Effective config for one response: session + `response` overrides, validated.
    fn response_config(
        &self,
        params: Option<&v::Obj>,
    ) -> Result<(SessionConfig, bool, Value), FieldError> {
        let mut cfg = self.session.clone();
        let Some(p) = params else {
            return Ok((cfg, true, Value::Null));
        };
        v::known_keys(p, RESPONSE_KEYS, "response")?;
        let mut shaped = serde_json::Map::new();
        shaped.insert("type".into(), json!("realtime"));
        for key in [
            "output_modalities",
            "instructions",
            "audio",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "reasoning",
            "max_output_tokens",
            "prompt",
        ] {
            if let Some(x) = p.get(key) {
                shaped.insert(key.into(), x.clone());
            }
        }
        if let Some(audio) = p.get("audio") {
            v::known_keys(
                v::object(audio, "response.audio")?,
                &["output"],
                "response.audio",
            )?;
        }
        let locks = UpdateLocks {
            connected: true,
            audio_produced: false,
        };
        cfg.apply(&Value::Object(shaped), "response", locks)?;
        let in_conversation = match p.get("conversation") {
            None => true,
            Some(c) => v::one_of(c, "response.conversation", &["auto", "none"])? == "auto",
        };
        let metadata = match p.get("metadata") {
            None | Some(Value::Null) => Value::Null,
            Some(m) => {
                v::object(m, "response.metadata")?;
                m.clone()
            }
        };
        if let Some(input) = p.get("input") {
            for (i, it) in v::array(input, "response.input")?.iter().enumerate() {
                let path = format!("response.input[{i}]");
                v::object(it, &path)?;
                v::string(
                    v::required(v::object(it, &path)?, "type", &path)?,
                    &join(&path, "type"),
                )?;
            }
        }
        Ok((cfg, in_conversation, metadata))
    }

    /// Picks the scripted step for this response, or the fallback line.
    fn plan_parts(&mut self, cfg: &SessionConfig) -> VecDeque<Part> {
        let trigger = if self.pending_tool_output {
            Some(Trigger::ToolOutput)
        } else if self.pending_notice {
            Some(Trigger::Notice)
        } else if self.pending_user_turn {
            Some(Trigger::UserTurn)
        } else if self.responses_started == 0 {
            Some(Trigger::SessionStart)
        } else {
            None
        };
        self.pending_tool_output = false;
        self.pending_user_turn = false;
        self.pending_notice = false;
        let fallback = Part::Say {
            text: self.scenario.fallback_say.clone(),
            wav: None,
        };
        let step = self.scenario.steps.get(self.step).cloned();
        let Some(step) = step.filter(|s| Some(s.on) == trigger) else {
            let next = self
                .scenario
                .steps
                .get(self.step)
                .map(|s| format!("{:?}", s.on));
            let note = format!(
                "response {} triggered by {:?}, but the next scenario step is {}; said the fallback line",
                self.responses_started + 1,
                trigger,
                next.unwrap_or_else(|| "none (script finished)".into())
            );
            self.record.update(|r| r.scenario_mismatches.push(note));
            return VecDeque::from([fallback]);
        };
        self.step += 1;
        let mut parts = VecDeque::new();
        if step.say.is_some() || step.say_wav.is_some() {
            parts.push_back(Part::Say {
                text: step.say.clone().unwrap_or_default(),
                wav: step.say_wav.clone(),
            });
        }
        if let Some(call) = &step.call {
            let arguments = fill_templates(&call.arguments, self.last_tool_output.as_ref());
            match check_call(cfg, &call.name, &arguments) {
                Ok(()) => parts.push_back(Part::Call {
                    name: call.name.clone(),
                    arguments: arguments.to_string(),
                }),
                Err(why) => {
                    self.record.update(|r| r.scenario_mismatches.push(why));
                    if parts.is_empty() {
                        parts.push_back(fallback);
                    }
                }
            }
        }
        parts
    }

    fn next_part(&mut self, now: Duration) {
        loop {
            let Some(r) = self.response.as_mut() else {
                return;
            };
            let Some(part) = r.parts.pop_front() else {
                self.end_response(EndReason::Completed);
                return;
            };
            match part {
                Part::Call { name, arguments } => self.emit_call(&name, &arguments),
                Part::Say { text, wav } => {
                    self.begin_say(text, wav, now);
                    return;
                }
            }
        }
    }

    fn out_rate(&self, r: &ActiveResponse) -> u32 {
        match self.transport {
            TransportKind::WebRtc => self.track_rate,
            TransportKind::WebSocket => r.out_format.rate(),
        }
    }

    fn begin_say(&mut self, text: String, wav: Option<PathBuf>, now: Duration) {
        let Some(r) = self.response.as_ref() else {
            return;
        };
        let (rate, pcm, total) = if r.audio {
            let rate = self.out_rate(r);
            let pcm = match wav.as_deref().map(|p| crate::voice::load_wav(p, rate)) {
                Some(Ok(pcm)) => pcm,
                Some(Err(e)) => {
                    let note = format!("say_wav unreadable ({e}); used the synthetic voice");
                    self.record.update(|rec| rec.scenario_mismatches.push(note));
                    crate::voice::synth_speech(&text, rate, self.scenario.ms_per_char)
                }
                None => crate::voice::synth_speech(&text, rate, self.scenario.ms_per_char),
            };
            let total = pcm.len();
            (rate, pcm, total)
        } else {
            let ms = (text.chars().count() as u64 * self.scenario.ms_per_char as u64).max(100);
            (1000, vec![], ms as usize)
        };
        let item_id = new_id("item_");
        let (rid, audio, in_conv) = (r.id.clone(), r.audio, r.in_conversation);
        let output_index = r.next_output_index;
        let item = json!({"id": item_id, "type": "message", "object": "realtime.item", "status": "in_progress",
                          "role": "assistant", "content": []});
        self.emit(
            "response.output_item.added",
            json!({"response_id": rid, "output_index": output_index, "item": item}),
        );
        if in_conv {
            let previous = self.conv.last_id();
            let mut stored = item.clone();
            stored["content"] =
                json!([{"type": if audio {"output_audio"} else {"output_text"}, "transcript": ""}]);
            self.conv.push(stored);
            self.emit(
                "conversation.item.added",
                json!({"previous_item_id": previous, "item": item}),
            );
        }
        let part = if audio {
            json!({"type": "audio", "transcript": ""})
        } else {
            json!({"type": "text", "text": ""})
        };
        self.emit(
            "response.content_part.added",
            json!({"response_id": rid, "item_id": item_id, "output_index": output_index, "content_index": 0, "part": part}),
        );
        let line = text.clone();
        self.record.update(|rec| rec.lines_said.push(line));
        let words = text.split_inclusive(' ').map(str::to_string).collect();
        if let Some(r) = self.response.as_mut() {
            r.next_output_index += 1;
            r.current = Some(SayProgress {
                item_id,
                output_index,
                text,
                pcm,
                total,
                rate,
                sent: 0,
                words,
                words_sent: 0,
                started: now,
                transcript: String::new(),
                stopped: false,
            });
        }
    }

    /// Emits what generation has produced by `now`.
    pub(super) fn advance_response(&mut self, now: Duration) {
        loop {
            let Some(r) = self.response.as_mut() else {
                return;
            };
            let Some(p) = r.current.as_mut() else { return };
            let rid = r.id.clone();
            let audio = r.audio;
            let fmt = r.out_format;
            let elapsed = now.saturating_sub(p.started).as_secs_f64() * self.opts.generation_speed;
            let target = if p.stopped {
                p.sent
            } else {
                ((elapsed * p.rate as f64) as usize).min(p.total)
            };
            let chunk = (p.rate / 10) as usize;
            let mut chunks = vec![];
            while p.sent < target && (target - p.sent >= chunk || target == p.total) {
                let n = chunk.min(p.total - p.sent);
                chunks.push((p.sent, n));
                p.sent += n;
            }
            let words_due = if p.total == 0 {
                p.words.len()
            } else {
                (p.sent * p.words.len()).div_ceil(p.total)
            };
            let finished = p.stopped || p.sent >= p.total;
            let words_due = if p.stopped { p.words_sent } else { words_due };
            let new_words: Vec<String> =
                p.words[p.words_sent..words_due.min(p.words.len())].to_vec();
            p.words_sent = words_due.min(p.words.len()).max(p.words_sent);
            let (item_id, output_index, rate) = (p.item_id.clone(), p.output_index, p.rate);
            let pcm_chunks: Vec<Vec<i16>> = if audio {
                chunks
                    .iter()
                    .map(|&(at, n)| p.pcm[at..at + n].to_vec())
                    .collect()
            } else {
                vec![]
            };
            for c in pcm_chunks {
                self.emit_audio_chunk(&rid, &item_id, output_index, fmt, rate, c, now);
            }
            for w in new_words {
                if let Some(p) = self.response.as_mut().and_then(|r| r.current.as_mut()) {
                    p.transcript.push_str(&w);
                }
                let (ty, key) = if audio {
                    ("response.output_audio_transcript.delta", "delta")
                } else {
                    ("response.output_text.delta", "delta")
                };
                self.emit(ty, json!({"response_id": rid, "item_id": item_id, "output_index": output_index, "content_index": 0, key: w}));
            }
            if !finished {
                return;
            }
            self.finish_say(false);
            self.next_part(now);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_audio_chunk(
        &mut self,
        rid: &str,
        item_id: &str,
        output_index: usize,
        fmt: AudioFormat,
        rate: u32,
        pcm: Vec<i16>,
        now: Duration,
    ) {
        let ms = pcm.len() as f64 * 1000.0 / rate as f64;
        self.audio_produced = true;
        self.conv.add_audio(item_id, ms.round() as u64);
        if let Some(r) = self.response.as_mut() {
            r.audio_ms += ms.round() as u64;
        }
        self.record
            .update(|rec| rec.audio_out_ms += ms.round() as u64);
        match self.transport {
            TransportKind::WebSocket => {
                let bytes = match fmt {
                    AudioFormat::Pcmu => callway_audio::mulaw::encode(&pcm),
                    AudioFormat::Pcma => crate::alaw::encode(&pcm),
                    AudioFormat::Pcm24k => pcm.iter().flat_map(|s| s.to_le_bytes()).collect(),
                };
                let delta = base64::engine::general_purpose::STANDARD.encode(bytes);
                self.emit(
                    "response.output_audio.delta",
                    json!({"response_id": rid, "item_id": item_id, "output_index": output_index, "content_index": 0, "delta": delta}),
                );
            }
            TransportKind::WebRtc => {
                let elapsed = now.as_secs_f64() * 1000.0;
                let started = match self.playback.as_mut() {
                    Some(pb) => {
                        let offset = pb.queued_ms.max(elapsed - pb.start.as_secs_f64() * 1000.0);
                        pb.segments.push((item_id.to_string(), offset, ms));
                        pb.queued_ms = offset + ms;
                        false
                    }
                    None => {
                        self.playback = Some(Playback {
                            response_id: rid.to_string(),
                            start: now,
                            queued_ms: ms,
                            segments: vec![(item_id.to_string(), 0.0, ms)],
                        });
                        true
                    }
                };
                if started {
                    self.emit("output_audio_buffer.started", json!({"response_id": rid}));
                }
                self.out.push(Output::Audio(pcm));
            }
        }
    }

    /// Closes the current spoken part (`incomplete` when cut short).
    fn finish_say(&mut self, incomplete: bool) {
        let Some(r) = self.response.as_mut() else {
            return;
        };
        let Some(p) = r.current.take() else { return };
        let rid = r.id.clone();
        let audio = r.audio;
        let in_conv = r.in_conversation;
        r.text_chars += p.transcript.chars().count() as u64;
        let transcript = p.transcript.clone();
        let base = json!({"response_id": rid, "item_id": p.item_id, "output_index": p.output_index, "content_index": 0});
        let with = |k: &str, val: Value| {
            let mut b = base.clone();
            b[k] = val;
            b
        };
        let (content, part) = if audio {
            self.emit("response.output_audio.done", base.clone());
            self.emit(
                "response.output_audio_transcript.done",
                with("transcript", json!(transcript)),
            );
            (
                json!({"type": "output_audio", "transcript": transcript}),
                json!({"type": "audio", "transcript": transcript}),
            )
        } else {
            self.emit("response.output_text.done", with("text", json!(transcript)));
            (
                json!({"type": "output_text", "text": transcript}),
                json!({"type": "text", "text": transcript}),
            )
        };
        self.emit("response.content_part.done", with("part", part));
        let status = if incomplete {
            "incomplete"
        } else {
            "completed"
        };
        let item = json!({"id": p.item_id, "type": "message", "object": "realtime.item", "status": status,
                          "role": "assistant", "content": [content]});
        self.emit(
            "response.output_item.done",
            json!({"response_id": rid, "output_index": p.output_index, "item": item}),
        );
        if in_conv {
            // Keep a truncation already applied to the stored transcript.
            let mut stored = item.clone();
            if let Some(prev) = self.conv.get(&p.item_id) {
                if prev["content"][0]["transcript"]
                    .as_str()
                    .is_some_and(|t| t.len() < transcript.len() && p.stopped)
                {
                    stored["content"][0]["transcript"] = prev["content"][0]["transcript"].clone();
                }
            }
            self.conv.replace(stored);
            self.emit(
                "conversation.item.done",
                json!({"previous_item_id": Value::Null, "item": item}),
            );
        }
        if let Some(r) = self.response.as_mut() {
            r.output.push(item);
        }
    }

    fn emit_call(&mut self, name: &str, arguments: &str) {
        let Some(r) = self.response.as_mut() else {
            return;
        };
        let rid = r.id.clone();
        let in_conv = r.in_conversation;
        let output_index = r.next_output_index;
        r.next_output_index += 1;
        r.text_chars += arguments.len() as u64;
        let item_id = new_id("item_");
        let call_id = new_id("call_");
        let mut item = json!({"id": item_id, "type": "function_call", "object": "realtime.item", "status": "in_progress",
                              "name": name, "call_id": call_id, "arguments": ""});
        self.emit(
            "response.output_item.added",
            json!({"response_id": rid, "output_index": output_index, "item": item}),
        );
        if in_conv {
            let previous = self.conv.last_id();
            self.emit(
                "conversation.item.added",
                json!({"previous_item_id": previous, "item": item}),
            );
        }
        let chars: Vec<char> = arguments.chars().collect();
        let step = chars.len().div_ceil(3).max(1);
        for piece in chars.chunks(step) {
            let delta: String = piece.iter().collect();
            self.emit(
                "response.function_call_arguments.delta",
                json!({"response_id": rid, "item_id": item_id, "output_index": output_index, "call_id": call_id, "delta": delta}),
            );
        }
        self.emit(
            "response.function_call_arguments.done",
            json!({"response_id": rid, "item_id": item_id, "output_index": output_index, "call_id": call_id,
                   "name": name, "arguments": arguments}),
        );
        item["status"] = json!("completed");
        item["arguments"] = json!(arguments);
        self.emit(
            "response.output_item.done",
            json!({"response_id": rid, "output_index": output_index, "item": item}),
        );
        if in_conv {
            self.conv.push(item.clone());
            self.emit(
                "conversation.item.done",
                json!({"previous_item_id": Value::Null, "item": item}),
            );
        }
        let rec = ToolCallRecord {
            call_id,
            name: name.to_string(),
            arguments: serde_json::from_str(arguments).unwrap_or(Value::Null),
        };
        self.record.update(|r| r.tool_calls.push(rec));
        if let Some(r) = self.response.as_mut() {
            r.output.push(item);
        }
    }

    fn end_response(&mut self, reason: EndReason) {
        if matches!(reason, EndReason::Cancelled(_)) {
            self.finish_say(true);
        }
        let Some(r) = self.response.take() else {
            return;
        };
        let (status, details) = match reason {
            EndReason::Completed => ("completed", Value::Null),
            EndReason::Cancelled(why) => ("cancelled", json!({"type": "cancelled", "reason": why})),
        };
        let input_tokens =
            (self.session.instructions.len() / 4) as u64 + 20 * self.user_turns as u64;
        let audio_tokens = r.audio_ms / 50;
        let text_tokens = r.text_chars.div_ceil(4);
        let usage = json!({
            "total_tokens": input_tokens + audio_tokens + text_tokens,
            "input_tokens": input_tokens,
            "output_tokens": audio_tokens + text_tokens,
            "input_token_details": {"text_tokens": input_tokens, "audio_tokens": 0, "image_tokens": 0, "cached_tokens": 0,
                                    "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}},
            "output_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens}
        });
        let body = self.response_json(&r, status, details, usage);
        self.emit("response.done", json!({ "response": body }));
    }

    fn response_json(
        &self,
        r: &ActiveResponse,
        status: &str,
        details: Value,
        usage: Value,
    ) -> Value {
        let modalities = if r.audio {
            json!(["audio"])
        } else {
            json!(["text"])
        };
        let conversation_id = if r.in_conversation {
            json!(format!("conv_{}", &self.session.id[5..]))
        } else {
            Value::Null
        };
        json!({
            "object": "realtime.response", "id": r.id, "status": status, "status_details": details,
            "output": r.output, "conversation_id": conversation_id, "output_modalities": modalities,
            "max_output_tokens": r.max_output_tokens,
            "audio": {"output": {"format": format_json(r.out_format), "voice": r.voice}},
            "usage": usage, "metadata": r.metadata,
        })
    }

    /// Speech started while the model talks.
    pub(super) fn barge_in(&mut self, now: Duration) {
        if self.response.as_ref().is_some_and(|r| r.in_conversation) {
            self.end_response(EndReason::Cancelled("turn_detected"));
        }
        if self.transport == TransportKind::WebRtc && self.playback.is_some() {
            let rid = self.clear_playback(now);
            self.emit("output_audio_buffer.cleared", json!({ "response_id": rid }));
        }
    }

    /// WebRTC: drops queued audio and truncates the item being played where playback stopped.
    pub(super) fn clear_playback(&mut self, now: Duration) -> Value {
        let Some(pb) = self.playback.take() else {
            return Value::Null;
        };
        self.out.push(Output::ClearAudio);
        let elapsed = (now.saturating_sub(pb.start)).as_secs_f64() * 1000.0;
        let mut cut: Option<(String, u64)> = None;
        for (item, offset, len) in &pb.segments {
            if elapsed < offset + len {
                let played = (elapsed - offset).clamp(0.0, *len);
                let before: f64 = pb
                    .segments
                    .iter()
                    .filter(|s| &s.0 == item && s.1 < *offset)
                    .map(|s| s.2)
                    .sum();
                cut = Some((item.clone(), (before + played) as u64));
                break;
            }
        }
        if let Some((item, played)) = cut {
            if self.conv.get(&item).is_some()
                && played < self.conv.audio_ms(&item)
                && self.truncate_item(&item, played).is_ok()
            {
                self.emit(
                    "conversation.item.truncated",
                    json!({"item_id": item, "content_index": 0, "audio_end_ms": played}),
                );
            }
        }
        json!(pb.response_id)
    }

    /// WebRTC: `output_audio_buffer.stopped` once the last queued audio has played.
    pub(super) fn advance_playback(&mut self, now: Duration) {
        let Some(pb) = self.playback.as_ref() else {
            return;
        };
        let generating = self
            .response
            .as_ref()
            .is_some_and(|r| r.id == pb.response_id);
        let end = pb.start + Duration::from_secs_f64(pb.queued_ms / 1000.0);
        if !generating && now >= end {
            let rid = pb.response_id.clone();
            self.playback = None;
            self.emit("output_audio_buffer.stopped", json!({ "response_id": rid }));
        }
    }

    /// Stops generating more audio for `item_id` (after a truncate).
    pub(super) fn stop_item_generation(&mut self, item_id: &str) {
        if let Some(p) = self.response.as_mut().and_then(|r| r.current.as_mut()) {
            if p.item_id == item_id {
                p.stopped = true;
            }
        }
    }

    /// Full length (ms) of the line being generated for `item_id`, if it is the current one.
    pub(super) fn response_line_ms(&self, item_id: &str) -> Option<u64> {
        let p = self.response.as_ref()?.current.as_ref()?;
        (p.item_id == item_id).then(|| (p.total as u64 * 1000 / p.rate.max(1) as u64).max(1))
    }

    /// For tests and diagnostics: the text of the line being generated.
    #[allow(dead_code)]
    pub(crate) fn current_line(&self) -> Option<&str> {
        self.response
            .as_ref()?
            .current
            .as_ref()
            .map(|p| p.text.as_str())
    }
}

fn format_json(f: AudioFormat) -> Value {
    match f {
        AudioFormat::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
        AudioFormat::Pcmu => json!({"type": "audio/pcmu"}),
        AudioFormat::Pcma => json!({"type": "audio/pcma"}),
    }
}

/// Replaces string values `{{output.FIELD}}` with that field of the last tool output; a value that
/// cannot be filled is dropped, so a required argument then shows up as a scenario mismatch.
fn fill_templates(arguments: &Value, last_output: Option<&Value>) -> Value {
    match arguments {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| {
                    let filled = match v
                        .as_str()
                        .and_then(|s| s.strip_prefix("{{output."))
                        .and_then(|s| s.strip_suffix("}}"))
                    {
                        Some(field) => last_output.and_then(|o| o.get(field)).cloned()?,
                        None => fill_templates(v, last_output),
                    };
                    Some((k.clone(), filled))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A real model only calls declared tools, with their required arguments.
fn check_call(cfg: &SessionConfig, name: &str, arguments: &Value) -> Result<(), String> {
    if cfg.tool_choice == json!("none") {
        return Err(format!(
            "scenario calls '{name}' but tool_choice is 'none'; said the line only"
        ));
    }
    let Some(tool) = cfg.function_tool(name) else {
        let declared: Vec<&str> = cfg
            .tools
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        return Err(format!("scenario calls '{name}' but the session declares no such function tool (declared: {declared:?})"));
    };
    if let Some(req) = tool["parameters"]["required"].as_array() {
        for r in req.iter().filter_map(Value::as_str) {
            if arguments.get(r).is_none() {
                return Err(format!(
                    "scenario calls '{name}' without its required argument '{r}'"
                ));
            }
        }
    }
    Ok(())
}
