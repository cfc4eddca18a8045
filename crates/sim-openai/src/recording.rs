//! What the simulator saw and said, for tests to assert on.

use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Snapshot of everything recorded since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recording {
    /// Every `POST /v1/realtime/client_secrets`, accepted or not.
    pub client_secret_requests: Vec<SecretRequest>,
    /// One per WebSocket connection or WebRTC call that got a session.
    pub sessions: Vec<SessionRecord>,
    /// Every HTTP error answered (REST or refused WebSocket handshake).
    pub http_errors: Vec<HttpError>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretRequest {
    /// The request body as JSON (`null` if it was not JSON).
    pub body: Value,
    pub status: u16,
    /// The `ek_` value handed out, when accepted.
    pub value: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HttpError {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    WebSocket,
    WebRtc,
}

/// One function call the model made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallRecord {
    pub call_id: String,
    pub name: String,
    pub arguments: Value,
}

/// One realtime session.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord {
    pub session_id: String,
    pub transport: TransportKind,
    /// `rtc_…` for WebRTC calls.
    pub call_id: Option<String>,
    /// The effective session config (after the last accepted `session.update`).
    pub session: Value,
    /// Every client event received, in order, parsed. Non-JSON text is kept as
    /// `{"_unparsed": text}`; `input_audio_buffer.append` audio is replaced by its length as
    /// `{"_base64_chars": n}` to keep snapshots small.
    pub client_events: Vec<Value>,
    /// `type` of every server event sent, in order.
    pub server_event_types: Vec<String>,
    /// Every `error` event sent.
    pub errors_sent: Vec<Value>,
    /// Milliseconds of input audio received (appended or RTP).
    pub audio_in_ms: u64,
    /// Loudest 10 ms window of input audio, dBFS (`None` until non-silent audio arrives).
    pub audio_in_max_dbfs: Option<f64>,
    /// Milliseconds of assistant audio produced.
    pub audio_out_ms: u64,
    /// Assistant lines started, in order (the full scripted text).
    pub lines_said: Vec<String>,
    pub tool_calls: Vec<ToolCallRecord>,
    /// `(call_id, output)` of every accepted `function_call_output`.
    pub tool_outputs: Vec<(String, String)>,
    /// Where the client's behaviour did not match the scenario.
    pub scenario_mismatches: Vec<String>,
    /// Close code sent by the server, if it closed the session.
    pub closed_with: Option<u16>,
    /// WebSocket only: the close code the client sent (1006 if the connection just ended).
    pub client_closed_with: Option<u16>,
}

impl SessionRecord {
    pub fn new(
        session_id: &str,
        transport: TransportKind,
        call_id: Option<String>,
        session: Value,
    ) -> Self {
        SessionRecord {
            session_id: session_id.to_string(),
            transport,
            call_id,
            session,
            client_events: vec![],
            server_event_types: vec![],
            errors_sent: vec![],
            audio_in_ms: 0,
            audio_in_max_dbfs: None,
            audio_out_ms: 0,
            lines_said: vec![],
            tool_calls: vec![],
            tool_outputs: vec![],
            scenario_mismatches: vec![],
            closed_with: None,
            client_closed_with: None,
        }
    }

    /// Count of server events of type `ty`.
    pub fn count(&self, ty: &str) -> usize {
        self.server_event_types.iter().filter(|t| *t == ty).count()
    }
}

impl Recording {
    /// The session with this id.
    pub fn session(&self, session_id: &str) -> Option<&SessionRecord> {
        self.sessions.iter().find(|s| s.session_id == session_id)
    }
}

/// Shared, lockable recording.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<Recording>>);

impl Recorder {
    pub fn with<R>(&self, f: impl FnOnce(&mut Recording) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    pub fn snapshot(&self) -> Recording {
        self.with(|r| r.clone())
    }

    /// Adds a session and returns a handle that updates it.
    pub fn add_session(&self, rec: SessionRecord) -> SessionHandle {
        let index = self.with(|r| {
            r.sessions.push(rec);
            r.sessions.len() - 1
        });
        SessionHandle {
            recorder: self.clone(),
            index,
        }
    }
}

/// Updates one session's record.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    recorder: Recorder,
    index: usize,
}

impl SessionHandle {
    pub fn update(&self, f: impl FnOnce(&mut SessionRecord)) {
        self.recorder.with(|r| {
            if let Some(s) = r.sessions.get_mut(self.index) {
                f(s)
            }
        })
    }
}
