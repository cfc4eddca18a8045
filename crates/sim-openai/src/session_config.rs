//! The GA `session` object: strict validation (unknown keys refused, types and enums checked),
//! partial updates, and the effective configuration as `session.created` / `session.updated` show it.

use crate::errors::{invalid_model, FieldError};
use crate::validate::{self as v, join, Obj};
use serde_json::{json, Value};

pub const MODELS: &[&str] = &[
    "gpt-realtime",
    "gpt-realtime-2025-08-28",
    "gpt-realtime-mini",
    "gpt-realtime-mini-2025-10-06",
    "gpt-realtime-mini-2025-12-15",
    "gpt-realtime-1.5",
    "gpt-realtime-2",
    "gpt-realtime-2.1",
    "gpt-realtime-2.1-mini",
    "gpt-audio-1.5",
    "gpt-audio-mini",
    "gpt-4o-realtime-preview",
    "gpt-4o-realtime-preview-2024-12-17",
    "gpt-4o-realtime-preview-2025-06-03",
    "gpt-4o-mini-realtime-preview",
    "gpt-4o-mini-realtime-preview-2024-12-17",
];
pub const VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
];
const TRANSCRIPTION_MODELS: &[&str] = &[
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-transcribe-diarize",
    "gpt-realtime-whisper",
    "gpt-transcribe",
    "gpt-live-transcribe",
];
pub const DEFAULT_INSTRUCTIONS: &str = "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. Act like a human, but remember that you aren't a human and that you can't do human things in the real world. Your voice and personality should be warm and engaging, with a lively and playful tone.";

pub fn is_known_model(model: &str) -> bool {
    MODELS.contains(&model)
}

/// Audio wire formats (`audio.*.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// 16-bit little-endian mono PCM at 24 kHz.
    Pcm24k,
    /// G.711 mu-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
}

impl AudioFormat {
    pub fn rate(self) -> u32 {
        match self {
            AudioFormat::Pcm24k => 24_000,
            AudioFormat::Pcmu | AudioFormat::Pcma => 8_000,
        }
    }
    /// Bytes per millisecond on the wire.
    pub fn bytes_per_ms(self) -> usize {
        match self {
            AudioFormat::Pcm24k => 48,
            AudioFormat::Pcmu | AudioFormat::Pcma => 8,
        }
    }
    fn to_json(self) -> Value {
        match self {
            AudioFormat::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
            AudioFormat::Pcmu => json!({"type": "audio/pcmu"}),
            AudioFormat::Pcma => json!({"type": "audio/pcma"}),
        }
    }
    fn parse(val: &Value, path: &str) -> Result<Self, FieldError> {
        let o = v::object(val, path)?;
        v::known_keys(o, &["type", "rate"], path)?;
        let t = v::one_of(
            v::required(o, "type", path)?,
            &join(path, "type"),
            &["audio/pcm", "audio/pcmu", "audio/pcma"],
        )?;
        match t.as_str() {
            "audio/pcm" => {
                if let Some(rate) = o.get("rate") {
                    let p = join(path, "rate");
                    let r = rate
                        .as_i64()
                        .ok_or_else(|| v::invalid_value(&p, &rate.to_string(), &["24000"]))?;
                    if r != 24_000 {
                        return Err(v::invalid_value(&p, &r.to_string(), &["24000"]));
                    }
                }
                Ok(AudioFormat::Pcm24k)
            }
            _ if o.contains_key("rate") => Err(FieldError::new(
                "unknown_parameter",
                format!("Unknown parameter: '{}'.", join(path, "rate")),
                Some(&join(path, "rate")),
            )),
            "audio/pcmu" => Ok(AudioFormat::Pcmu),
            _ => Ok(AudioFormat::Pcma),
        }
    }
}

/// Server-side turn detection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnDetection {
    pub semantic: bool,
    pub threshold: f64,
    pub prefix_padding_ms: u64,
    pub silence_duration_ms: u64,
    pub idle_timeout_ms: Option<u64>,
    pub eagerness: String,
    pub create_response: bool,
    pub interrupt_response: bool,
}

impl Default for TurnDetection {
    fn default() -> Self {
        TurnDetection {
            semantic: false,
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 200,
            idle_timeout_ms: None,
            eagerness: "auto".into(),
            create_response: true,
            interrupt_response: true,
        }
    }
}

impl TurnDetection {
    /// Silence that ends a turn; semantic VAD is approximated by eagerness.
    pub fn end_silence_ms(&self) -> u64 {
        if !self.semantic {
            return self.silence_duration_ms;
        }
        match self.eagerness.as_str() {
            "high" => 300,
            "low" => 1200,
            _ => 600,
        }
    }

    fn to_json(&self) -> Value {
        if self.semantic {
            json!({"type": "semantic_vad", "eagerness": self.eagerness,
                   "create_response": self.create_response, "interrupt_response": self.interrupt_response})
        } else {
            json!({"type": "server_vad", "threshold": self.threshold, "prefix_padding_ms": self.prefix_padding_ms,
                   "silence_duration_ms": self.silence_duration_ms, "idle_timeout_ms": self.idle_timeout_ms,
                   "create_response": self.create_response, "interrupt_response": self.interrupt_response})
        }
    }

    fn parse(val: &Value, path: &str) -> Result<Option<Self>, FieldError> {
        if val.is_null() {
            return Ok(None);
        }
        let o = v::object(val, path)?;
        let t = v::one_of(
            v::required(o, "type", path)?,
            &join(path, "type"),
            &["server_vad", "semantic_vad"],
        )?;
        let mut td = TurnDetection {
            semantic: t == "semantic_vad",
            ..Default::default()
        };
        if td.semantic {
            v::known_keys(
                o,
                &["type", "eagerness", "create_response", "interrupt_response"],
                path,
            )?;
            if let Some(e) = o.get("eagerness") {
                td.eagerness = v::one_of(
                    e,
                    &join(path, "eagerness"),
                    &["low", "medium", "high", "auto"],
                )?;
            }
        } else {
            v::known_keys(
                o,
                &[
                    "type",
                    "threshold",
                    "prefix_padding_ms",
                    "silence_duration_ms",
                    "idle_timeout_ms",
                    "create_response",
                    "interrupt_response",
                ],
                path,
            )?;
            if let Some(x) = o.get("threshold") {
                td.threshold = v::number(x, &join(path, "threshold"), 0.0, 1.0)?;
            }
            if let Some(x) = o.get("prefix_padding_ms") {
                td.prefix_padding_ms =
                    v::integer(x, &join(path, "prefix_padding_ms"), 0, 10_000)? as u64;
            }
            if let Some(x) = o.get("silence_duration_ms") {
                td.silence_duration_ms =
                    v::integer(x, &join(path, "silence_duration_ms"), 0, 10_000)? as u64;
            }
            if let Some(x) = o.get("idle_timeout_ms") {
                if !x.is_null() {
                    td.idle_timeout_ms =
                        Some(v::integer(x, &join(path, "idle_timeout_ms"), 5_000, 30_000)? as u64);
                }
            }
        }
        if let Some(x) = o.get("create_response") {
            td.create_response = v::boolean(x, &join(path, "create_response"))?;
        }
        if let Some(x) = o.get("interrupt_response") {
            td.interrupt_response = v::boolean(x, &join(path, "interrupt_response"))?;
        }
        Ok(Some(td))
    }
}

/// Realtime (speech to speech) or transcription-only session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionType {
    Realtime,
    Transcription,
}

/// The effective session configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub session_type: SessionType,
    pub id: String,
    pub model: String,
    pub output_modalities: Vec<String>,
    pub instructions: String,
    pub input_format: AudioFormat,
    pub transcription: Value,
    pub noise_reduction: Value,
    pub turn_detection: Option<TurnDetection>,
    pub output_format: AudioFormat,
    pub voice: Value,
    pub speed: f64,
    pub tools: Vec<Value>,
    pub tool_choice: Value,
    pub parallel_tool_calls: Option<bool>,
    pub reasoning: Option<Value>,
    pub max_output_tokens: Value,
    pub truncation: Value,
    pub prompt: Value,
    pub include: Value,
    pub tracing: Value,
    /// Unix seconds; 0 in the client-secret response, as documented.
    pub expires_at: u64,
}

/// What a `session.update` may not change at this point.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpdateLocks {
    /// Set once the session exists: `model` and `type` are fixed.
    pub connected: bool,
    /// Set once assistant audio was produced: `voice` is fixed.
    pub audio_produced: bool,
}

impl SessionConfig {
    pub fn new_default(session_type: SessionType) -> Self {
        SessionConfig {
            session_type,
            id: crate::ids::new_id("sess_"),
            model: "gpt-realtime".into(),
            output_modalities: vec!["audio".into()],
            instructions: DEFAULT_INSTRUCTIONS.into(),
            input_format: AudioFormat::Pcm24k,
            transcription: Value::Null,
            noise_reduction: Value::Null,
            turn_detection: Some(TurnDetection::default()),
            output_format: AudioFormat::Pcm24k,
            voice: json!("alloy"),
            speed: 1.0,
            tools: vec![],
            tool_choice: json!("auto"),
            parallel_tool_calls: None,
            reasoning: None,
            max_output_tokens: json!("inf"),
            truncation: json!("auto"),
            prompt: Value::Null,
            include: Value::Null,
            tracing: Value::Null,
            expires_at: 0,
        }
    }

    /// Builds a session from a creation request (`client_secrets` `session`, `/calls` `session`).
    pub fn from_request(val: &Value, path: &str) -> Result<Self, FieldError> {
        let o = v::object(val, path)?;
        let t = parse_type(o, path)?;
        let mut cfg = SessionConfig::new_default(t);
        cfg.apply(val, path, UpdateLocks::default())?;
        Ok(cfg)
    }

    /// Applies a partial update. All or nothing: on error `self` is unchanged.
    pub fn apply(&mut self, val: &Value, path: &str, locks: UpdateLocks) -> Result<(), FieldError> {
        let mut next = self.clone();
        next.apply_inner(val, path, locks)?;
        *self = next;
        Ok(())
    }

    fn apply_inner(
        &mut self,
        val: &Value,
        path: &str,
        locks: UpdateLocks,
    ) -> Result<(), FieldError> {
        let o = v::object(val, path)?;
        let t = parse_type(o, path)?;
        if t != self.session_type {
            let got = v::string(v::required(o, "type", path)?, &join(path, "type"))?;
            return Err(FieldError::new(
                "invalid_value",
                format!(
                    "Cannot update a session's type. The session type is '{}', but got '{got}'.",
                    self.type_str()
                ),
                Some(&join(path, "type")),
            ));
        }
        if t == SessionType::Transcription {
            v::known_keys(o, &["type", "audio", "include"], path)?;
        } else {
            v::known_keys(
                o,
                &[
                    "type",
                    "model",
                    "output_modalities",
                    "instructions",
                    "audio",
                    "tools",
                    "tool_choice",
                    "parallel_tool_calls",
                    "reasoning",
                    "max_output_tokens",
                    "truncation",
                    "prompt",
                    "include",
                    "tracing",
                ],
                path,
            )?;
        }
        if let Some(m) = o.get("model") {
            let p = join(path, "model");
            let m = v::string(m, &p)?;
            if !is_known_model(m) {
                return Err(invalid_model(m, Some(&p)));
            }
            if locks.connected && m != self.model {
                return Err(FieldError::new(
                    "invalid_value",
                    "Cannot update a session's model after it was created.",
                    Some(&p),
                ));
            }
            self.model = m.to_string();
        }
        if let Some(x) = o.get("output_modalities") {
            let p = join(path, "output_modalities");
            let arr = v::array(x, &p)?;
            if arr.len() != 1 {
                return Err(FieldError::new(
                    "invalid_value",
                    format!("Invalid '{p}': expected exactly one of 'audio' or 'text'."),
                    Some(&p),
                ));
            }
            self.output_modalities =
                vec![v::one_of(&arr[0], &format!("{p}[0]"), &["audio", "text"])?];
        }
        if let Some(x) = o.get("instructions") {
            self.instructions = v::string(x, &join(path, "instructions"))?.to_string();
        }
        if let Some(x) = o.get("audio") {
            self.apply_audio(x, &join(path, "audio"), locks)?;
        }
        if let Some(x) = o.get("tools") {
            let p = join(path, "tools");
            let arr = v::array(x, &p)?;
            for (i, tool) in arr.iter().enumerate() {
                validate_tool(tool, &format!("{p}[{i}]"))?;
            }
            self.tools = arr.clone();
        }
        if let Some(x) = o.get("tool_choice") {
            validate_tool_choice(x, &join(path, "tool_choice"))?;
            self.tool_choice = x.clone();
        }
        if let Some(x) = o.get("parallel_tool_calls") {
            self.parallel_tool_calls = Some(v::boolean(x, &join(path, "parallel_tool_calls"))?);
        }
        if let Some(x) = o.get("reasoning") {
            let p = join(path, "reasoning");
            let r = v::object(x, &p)?;
            v::known_keys(r, &["effort"], &p)?;
            if let Some(e) = r.get("effort") {
                v::one_of(
                    e,
                    &join(&p, "effort"),
                    &["minimal", "low", "medium", "high", "xhigh"],
                )?;
            }
            self.reasoning = Some(x.clone());
        }
        if let Some(x) = o.get("max_output_tokens") {
            validate_max_tokens(x, &join(path, "max_output_tokens"))?;
            self.max_output_tokens = x.clone();
        }
        if let Some(x) = o.get("truncation") {
            validate_truncation(x, &join(path, "truncation"))?;
            self.truncation = x.clone();
        }
        if let Some(x) = o.get("prompt") {
            let p = join(path, "prompt");
            if !x.is_null() {
                let po = v::object(x, &p)?;
                v::known_keys(po, &["id", "version", "variables"], &p)?;
                v::string(v::required(po, "id", &p)?, &join(&p, "id"))?;
                if let Some(ver) = po.get("version") {
                    v::string(ver, &join(&p, "version"))?;
                }
                if let Some(vars) = po.get("variables") {
                    v::object(vars, &join(&p, "variables"))?;
                }
            }
            self.prompt = x.clone();
        }
        if let Some(x) = o.get("include") {
            let p = join(path, "include");
            if !x.is_null() {
                for (i, s) in v::array(x, &p)?.iter().enumerate() {
                    v::one_of(
                        s,
                        &format!("{p}[{i}]"),
                        &["item.input_audio_transcription.logprobs"],
                    )?;
                }
            }
            self.include = x.clone();
        }
        if let Some(x) = o.get("tracing") {
            let p = join(path, "tracing");
            match x {
                Value::Null => {}
                Value::String(s) if s == "auto" => {}
                Value::String(s) => return Err(v::invalid_value(&p, s, &["auto"])),
                _ => {
                    let t = v::object(x, &p)?;
                    v::known_keys(t, &["workflow_name", "group_id", "metadata"], &p)?;
                }
            }
            if !self.tracing.is_null() && *x != self.tracing && locks.connected {
                return Err(FieldError::new(
                    "invalid_value",
                    "Tracing cannot be modified once it has been enabled.",
                    Some(&p),
                ));
            }
            self.tracing = x.clone();
        }
        Ok(())
    }

    fn apply_audio(
        &mut self,
        val: &Value,
        path: &str,
        locks: UpdateLocks,
    ) -> Result<(), FieldError> {
        let o = v::object(val, path)?;
        let transcription_only = self.session_type == SessionType::Transcription;
        v::known_keys(
            o,
            if transcription_only {
                &["input"]
            } else {
                &["input", "output"]
            },
            path,
        )?;
        if let Some(input) = o.get("input") {
            let p = join(path, "input");
            let io = v::object(input, &p)?;
            v::known_keys(
                io,
                &[
                    "format",
                    "transcription",
                    "noise_reduction",
                    "turn_detection",
                ],
                &p,
            )?;
            if let Some(f) = io.get("format") {
                self.input_format = AudioFormat::parse(f, &join(&p, "format"))?;
            }
            if let Some(t) = io.get("transcription") {
                let tp = join(&p, "transcription");
                if !t.is_null() {
                    let to = v::object(t, &tp)?;
                    v::known_keys(
                        to,
                        &[
                            "model",
                            "language",
                            "prompt",
                            "languages",
                            "keywords",
                            "delay",
                        ],
                        &tp,
                    )?;
                    if let Some(m) = to.get("model") {
                        v::one_of(m, &join(&tp, "model"), TRANSCRIPTION_MODELS)?;
                    }
                    for key in ["language", "prompt", "delay"] {
                        if let Some(s) = to.get(key) {
                            v::string(s, &join(&tp, key))?;
                        }
                    }
                }
                self.transcription = t.clone();
            }
            if let Some(n) = io.get("noise_reduction") {
                let np = join(&p, "noise_reduction");
                if !n.is_null() {
                    let no = v::object(n, &np)?;
                    v::known_keys(no, &["type"], &np)?;
                    v::one_of(
                        v::required(no, "type", &np)?,
                        &join(&np, "type"),
                        &["near_field", "far_field"],
                    )?;
                }
                self.noise_reduction = n.clone();
            }
            if let Some(t) = io.get("turn_detection") {
                self.turn_detection = TurnDetection::parse(t, &join(&p, "turn_detection"))?;
            }
        }
        if let Some(output) = o.get("output") {
            let p = join(path, "output");
            let oo = v::object(output, &p)?;
            v::known_keys(oo, &["format", "voice", "speed"], &p)?;
            if let Some(f) = oo.get("format") {
                self.output_format = AudioFormat::parse(f, &join(&p, "format"))?;
            }
            if let Some(voice) = oo.get("voice") {
                let vp = join(&p, "voice");
                match voice {
                    Value::String(_) => {
                        v::one_of(voice, &vp, VOICES)?;
                    }
                    Value::Object(vo) => {
                        v::known_keys(vo, &["id"], &vp)?;
                        let id = v::string(v::required(vo, "id", &vp)?, &join(&vp, "id"))?;
                        if !id.starts_with("voice_") {
                            return Err(v::invalid_value(&join(&vp, "id"), id, &["voice_..."]));
                        }
                    }
                    other => {
                        v::string(other, &vp)?;
                    }
                }
                if locks.audio_produced && *voice != self.voice {
                    return Err(FieldError::new(
                        "cannot_update_voice",
                        "Cannot update a conversation's voice if assistant audio is present.",
                        Some(&vp),
                    ));
                }
                self.voice = voice.clone();
            }
            if let Some(s) = oo.get("speed") {
                self.speed = v::number(s, &join(&p, "speed"), 0.25, 1.5)?;
            }
        }
        Ok(())
    }

    pub fn type_str(&self) -> &'static str {
        match self.session_type {
            SessionType::Realtime => "realtime",
            SessionType::Transcription => "transcription",
        }
    }

    /// True when responses carry audio (`output_modalities: ["audio"]`).
    pub fn audio_out(&self) -> bool {
        self.output_modalities.iter().any(|m| m == "audio")
    }

    /// The declared function tool named `name`, if any.
    pub fn function_tool(&self, name: &str) -> Option<&Value> {
        self.tools
            .iter()
            .find(|t| t["type"] == "function" && t["name"] == name)
    }

    /// The effective session as the server shows it.
    pub fn to_json(&self) -> Value {
        if self.session_type == SessionType::Transcription {
            return json!({
                "type": "transcription",
                "object": "realtime.transcription_session",
                "id": self.id,
                "audio": {"input": {
                    "format": self.input_format.to_json(),
                    "transcription": self.transcription,
                    "noise_reduction": self.noise_reduction,
                    "turn_detection": self.turn_detection.as_ref().map(TurnDetection::to_json),
                }},
                "include": self.include,
                "expires_at": self.expires_at,
            });
        }
        let mut s = json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": self.output_modalities,
            "instructions": self.instructions,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "tracing": self.tracing,
            "truncation": self.truncation,
            "prompt": self.prompt,
            "expires_at": self.expires_at,
            "audio": {
                "input": {
                    "format": self.input_format.to_json(),
                    "transcription": self.transcription,
                    "noise_reduction": self.noise_reduction,
                    "turn_detection": self.turn_detection.as_ref().map(TurnDetection::to_json),
                },
                "output": {
                    "format": self.output_format.to_json(),
                    "voice": self.voice,
                    "speed": self.speed,
                }
            },
            "include": self.include,
        });
        if let Some(p) = self.parallel_tool_calls {
            s["parallel_tool_calls"] = json!(p);
        }
        if let Some(r) = &self.reasoning {
            s["reasoning"] = r.clone();
        }
        s
    }
}

fn parse_type(o: &Obj, path: &str) -> Result<SessionType, FieldError> {
    let t = v::one_of(
        v::required(o, "type", path)?,
        &join(path, "type"),
        &["realtime", "transcription"],
    )?;
    Ok(if t == "realtime" {
        SessionType::Realtime
    } else {
        SessionType::Transcription
    })
}

fn validate_tool(tool: &Value, path: &str) -> Result<(), FieldError> {
    let o = v::object(tool, path)?;
    let t = v::one_of(
        v::required(o, "type", path)?,
        &join(path, "type"),
        &["function", "mcp"],
    )?;
    if t == "mcp" {
        v::string(
            v::required(o, "server_label", path)?,
            &join(path, "server_label"),
        )?;
        return Ok(());
    }
    v::known_keys(o, &["type", "name", "description", "parameters"], path)?;
    let np = join(path, "name");
    let name = v::string(v::required(o, "name", path)?, &np)?;
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(FieldError::new(
            "invalid_value",
            format!("Invalid '{np}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$' (1 to 64 characters)."),
            Some(&np),
        ));
    }
    if let Some(d) = o.get("description") {
        v::string(d, &join(path, "description"))?;
    }
    if let Some(params) = o.get("parameters") {
        validate_json_schema(params, &join(path, "parameters"))?;
    }
    Ok(())
}

/// A function's `parameters` must be a JSON Schema object schema.
fn validate_json_schema(schema: &Value, path: &str) -> Result<(), FieldError> {
    let o = v::object(schema, path)?;
    let bad = |msg: &str| {
        FieldError::new(
            "invalid_function_parameters",
            format!("Invalid schema for function parameters: {msg}"),
            Some(path),
        )
    };
    match o.get("type") {
        Some(Value::String(t)) if t == "object" => {}
        Some(other) => {
            return Err(bad(&format!(
                "schema must be a JSON Schema of 'type: \"object\"', got 'type: {other}'."
            )))
        }
        None => {
            return Err(bad(
                "schema must be a JSON Schema of 'type: \"object\"', got 'type: None'.",
            ))
        }
    }
    let props = match o.get("properties") {
        None => None,
        Some(p) => Some(
            p.as_object()
                .ok_or_else(|| bad("'properties' must be an object."))?,
        ),
    };
    if let Some(req) = o.get("required") {
        let req = req
            .as_array()
            .ok_or_else(|| bad("'required' must be an array."))?;
        for r in req {
            let name = r
                .as_str()
                .ok_or_else(|| bad("'required' entries must be strings."))?;
            if !props.is_some_and(|p| p.contains_key(name)) {
                return Err(bad(&format!(
                    "'required' names '{name}', which is not in 'properties'."
                )));
            }
        }
    }
    Ok(())
}

fn validate_tool_choice(x: &Value, path: &str) -> Result<(), FieldError> {
    match x {
        Value::String(_) => {
            v::one_of(x, path, &["auto", "none", "required"])?;
        }
        _ => {
            let o = v::object(x, path)?;
            let t = v::one_of(
                v::required(o, "type", path)?,
                &join(path, "type"),
                &["function", "mcp"],
            )?;
            if t == "function" {
                v::known_keys(o, &["type", "name"], path)?;
                v::string(v::required(o, "name", path)?, &join(path, "name"))?;
            } else {
                v::known_keys(o, &["type", "server_label", "name"], path)?;
                v::string(
                    v::required(o, "server_label", path)?,
                    &join(path, "server_label"),
                )?;
            }
        }
    }
    Ok(())
}

pub fn validate_max_tokens(x: &Value, path: &str) -> Result<(), FieldError> {
    match x {
        Value::String(s) if s == "inf" => Ok(()),
        Value::String(s) => Err(v::invalid_value(path, s, &["inf"])),
        _ => v::integer(x, path, 1, 4096).map(|_| ()),
    }
}

fn validate_truncation(x: &Value, path: &str) -> Result<(), FieldError> {
    match x {
        Value::String(_) => v::one_of(x, path, &["auto", "disabled"]).map(|_| ()),
        _ => {
            let o = v::object(x, path)?;
            v::known_keys(o, &["type", "retention_ratio", "token_limits"], path)?;
            v::one_of(
                v::required(o, "type", path)?,
                &join(path, "type"),
                &["retention_ratio"],
            )?;
            v::number(
                v::required(o, "retention_ratio", path)?,
                &join(path, "retention_ratio"),
                0.0,
                1.0,
            )?;
            if let Some(tl) = o.get("token_limits") {
                let tp = join(path, "token_limits");
                let t = v::object(tl, &tp)?;
                v::known_keys(t, &["post_instructions"], &tp)?;
                if let Some(pi) = t.get("post_instructions") {
                    v::integer(pi, &join(&tp, "post_instructions"), 0, i64::MAX)?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(val: Value) -> FieldError {
        SessionConfig::from_request(&val, "session").unwrap_err()
    }

    #[test]
    fn type_is_required_and_enumerated() {
        assert_eq!(err(json!({})).code, "missing_required_parameter");
        assert_eq!(err(json!({})).param.as_deref(), Some("session.type"));
        assert_eq!(err(json!({"type": "session"})).code, "invalid_value");
    }

    #[test]
    fn unknown_and_beta_keys_are_refused() {
        let e = err(json!({"type": "realtime", "modalities": ["audio"]}));
        assert_eq!(e.code, "unknown_parameter");
        assert_eq!(e.message, "Unknown parameter: 'session.modalities'.");
        let e =
            err(json!({"type": "realtime", "audio": {"output": {"voice": "alloy", "colour": 1}}}));
        assert_eq!(e.param.as_deref(), Some("session.audio.output.colour"));
    }

    #[test]
    fn enums_ranges_and_tools_are_checked() {
        assert_eq!(
            err(json!({"type": "realtime", "model": "gpt-live-1"})).code,
            "invalid_model"
        );
        assert_eq!(
            err(json!({"type": "realtime", "audio": {"output": {"voice": "bob"}}})).code,
            "invalid_value"
        );
        assert_eq!(err(json!({"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}})).code, "invalid_value");
        assert_eq!(
            err(json!({"type": "realtime", "max_output_tokens": 5000})).code,
            "integer_above_max_value"
        );
        assert_eq!(err(json!({"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 100}}}})).code, "integer_below_min_value");
        assert_eq!(
            err(json!({"type": "realtime", "tools": [{"type": "function", "name": "a b"}]})).code,
            "invalid_value"
        );
        assert_eq!(err(json!({"type": "realtime", "tools": [{"type": "function", "name": "f", "parameters": {"type": "string"}}]})).code, "invalid_function_parameters");
        assert_eq!(
            err(json!({"type": "realtime", "instructions": 3})).code,
            "invalid_type"
        );
    }

    #[test]
    fn partial_update_keeps_the_rest_and_locks_apply() {
        let mut s = SessionConfig::from_request(
            &json!({"type": "realtime", "instructions": "hi", "audio": {"input": {"format": {"type": "audio/pcmu"}}}}),
            "session",
        )
        .unwrap();
        s.apply(
            &json!({"type": "realtime", "audio": {"output": {"voice": "marin"}}}),
            "session",
            UpdateLocks::default(),
        )
        .unwrap();
        assert_eq!(s.instructions, "hi");
        assert_eq!(s.input_format, AudioFormat::Pcmu);
        assert_eq!(s.to_json()["audio"]["output"]["voice"], "marin");
        let locks = UpdateLocks {
            connected: true,
            audio_produced: true,
        };
        let e = s
            .apply(
                &json!({"type": "realtime", "audio": {"output": {"voice": "cedar"}}}),
                "session",
                locks,
            )
            .unwrap_err();
        assert_eq!(e.code, "cannot_update_voice");
        let e = s
            .apply(&json!({"type": "transcription"}), "session", locks)
            .unwrap_err();
        assert_eq!(e.code, "invalid_value");
        let e = s
            .apply(
                &json!({"type": "realtime", "instructions": "x", "bogus": 1}),
                "session",
                locks,
            )
            .unwrap_err();
        assert_eq!(e.code, "unknown_parameter");
        assert_eq!(s.instructions, "hi", "a rejected update changes nothing");
    }
}
