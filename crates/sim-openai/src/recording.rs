//! What the simulator saw and said, for tests to assert on.

use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Snapshot of everything recorded since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Recording {
    /// Every `POST /v1/realtime/client_secrets`, accepted or not.
    pub client_secret_requests: Vec<SecretRequest>,
    /// One per WebSocket connection or WebRTC call that got a session.
    pub sessions: Vec<SessionRecord>,
    /// Every HTTP error answered (REST or refused WebSocket handshake).
    pub http_errors: Vec<HttpError>,
    /// One per WebRTC call created (`POST /v1/realtime/calls` answered 201), in creation order.
    pub calls: Vec<CallRecord>,
    /// One per sideband WebSocket attached (`GET /v1/realtime?call_id=…` upgraded), in order.
    pub sidebands: Vec<SidebandRecord>,
}

/// When something happened: `seq` orders every [`Moment`] of one simulator (strictly
/// increasing), `at_ms` counts milliseconds since the simulator started, and `at` is the same
/// instant on the process clock, comparable with instants taken elsewhere in a test.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Moment {
    pub seq: u64,
    pub at_ms: u64,
    #[serde(skip)]
    pub at: Instant,
}

/// How a WebRTC call was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallCreation {
    /// `Content-Type: application/sdp` (session from the `ek_` secret, or the default session
    /// with a standard key).
    Sdp,
    /// `multipart/form-data` with `sdp` and, optionally, `session` (standard key: the unified
    /// interface).
    Multipart,
}

/// Why a WebRTC call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEndReason {
    /// `POST /v1/realtime/calls/{id}/hangup`.
    HungUp,
    /// The browser's peer went away (ICE disconnected, DTLS/SCTP closed, transport error).
    PeerGone,
    /// No ICE connection within 30 s of the answer.
    NeverConnected,
    /// The session closed itself (`session_expired` → 1001, beta event → 4000).
    SessionClosed(u16),
    /// The simulator shut down.
    Shutdown,
}

/// The end of a call.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CallEnd {
    pub reason: CallEndReason,
    pub at: Moment,
}

/// One WebRTC call.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// `rtc_…` (the last segment of the `Location` header).
    pub call_id: String,
    /// The session's `sess_…` id (see [`Recording::session`]).
    pub session_id: String,
    pub created_with: CallCreation,
    /// The multipart `session` part as sent (`None` for `application/sdp` or no part).
    pub session_request: Option<Value>,
    pub created: Moment,
    /// When `POST …/hangup` was accepted: recorded before its `200` is sent, so a test can
    /// check that a client waited for the hang-up before doing something else.
    pub hangup_requested: Option<Moment>,
    /// When and why the call stopped for everyone (no attach or hang-up from then on), recorded
    /// before the browser is told; after `hangup_requested` for a hang-up.
    pub ended: Option<CallEnd>,
}

/// How a sideband socket ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SidebandEndKind {
    /// The simulator sent a close frame with this code: 1000 when the call ended (hang-up,
    /// browser gone), 1001 on session expiry or shutdown.
    ServerClosed(u16),
    /// The client sent a close frame with this code (1005 without a code; 1006 when the
    /// connection just ended).
    ClientClosed(u16),
    /// Dropped by a failure knob (`drop_sidebands`, `sideband_fail_after_events`): the TCP
    /// connection ended without a close frame.
    Dropped,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct SidebandEnd {
    pub kind: SidebandEndKind,
    pub at: Moment,
}

/// A client event received on a sideband.
#[derive(Debug, Clone, Serialize)]
pub struct SidebandEvent {
    pub at: Moment,
    /// Parsed like [`SessionRecord::client_events`] (`{"_unparsed": text}` when not JSON).
    pub event: Value,
}

/// One sideband WebSocket (`GET /v1/realtime?call_id=…`).
#[derive(Debug, Clone, Serialize)]
pub struct SidebandRecord {
    pub call_id: String,
    pub session_id: String,
    pub attached: Moment,
    /// Every client event this socket sent, in order. They also appear, interleaved with the
    /// data channel's, in the call's [`SessionRecord::client_events`].
    pub client_events: Vec<SidebandEvent>,
    /// `type` of every server event written to this socket, in order.
    pub server_event_types: Vec<String>,
    pub ended: Option<SidebandEnd>,
}

impl SidebandRecord {
    /// The client events of this type, in order.
    pub fn events_of_type(&self, ty: &str) -> Vec<&Value> {
        self.client_events
            .iter()
            .map(|e| &e.event)
            .filter(|e| e["type"] == ty)
            .collect()
    }
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

    /// The WebRTC call with this `rtc_…` id.
    pub fn call(&self, call_id: &str) -> Option<&CallRecord> {
        self.calls.iter().find(|c| c.call_id == call_id)
    }

    /// The session of the WebRTC call with this `rtc_…` id.
    pub fn call_session(&self, call_id: &str) -> Option<&SessionRecord> {
        self.sessions
            .iter()
            .find(|s| s.call_id.as_deref() == Some(call_id))
    }

    /// Every sideband attached to this call, in attach order.
    pub fn sidebands_of(&self, call_id: &str) -> Vec<&SidebandRecord> {
        self.sidebands
            .iter()
            .filter(|s| s.call_id == call_id)
            .collect()
    }
}

/// Shared, lockable recording.
#[derive(Debug, Clone)]
pub struct Recorder(Arc<RecorderInner>);

#[derive(Debug)]
struct RecorderInner {
    recording: Mutex<Recording>,
    started: Instant,
    seq: AtomicU64,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder(Arc::new(RecorderInner {
            recording: Mutex::new(Recording::default()),
            started: Instant::now(),
            seq: AtomicU64::new(0),
        }))
    }
}

impl Recorder {
    pub fn with<R>(&self, f: impl FnOnce(&mut Recording) -> R) -> R {
        let mut guard = self.0.recording.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Now, as a [`Moment`] later than every one taken before.
    pub fn moment(&self) -> Moment {
        let seq = self.0.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let at = Instant::now();
        Moment {
            seq,
            at_ms: at.duration_since(self.0.started).as_millis() as u64,
            at,
        }
    }

    /// Adds a call and returns a handle that updates it.
    pub fn add_call(&self, rec: CallRecord) -> CallHandle {
        let index = self.with(|r| {
            r.calls.push(rec);
            r.calls.len() - 1
        });
        CallHandle {
            recorder: self.clone(),
            index,
        }
    }

    /// Adds a sideband and returns a handle that updates it.
    pub fn add_sideband(&self, rec: SidebandRecord) -> SidebandHandle {
        let index = self.with(|r| {
            r.sidebands.push(rec);
            r.sidebands.len() - 1
        });
        SidebandHandle {
            recorder: self.clone(),
            index,
        }
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

/// Updates one call's record.
#[derive(Debug, Clone)]
pub struct CallHandle {
    recorder: Recorder,
    index: usize,
}

impl CallHandle {
    pub fn update(&self, f: impl FnOnce(&mut CallRecord)) {
        self.recorder.with(|r| {
            if let Some(c) = r.calls.get_mut(self.index) {
                f(c)
            }
        })
    }

    /// Records the end once (the first reason wins).
    pub fn ended(&self, reason: CallEndReason) {
        let at = self.recorder.moment();
        self.update(|c| {
            c.ended.get_or_insert(CallEnd { reason, at });
        })
    }
}

/// Updates one sideband's record.
#[derive(Debug, Clone)]
pub struct SidebandHandle {
    recorder: Recorder,
    index: usize,
}

impl SidebandHandle {
    /// Position in [`Recording::sidebands`] (also the sideband's id inside its call).
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn update(&self, f: impl FnOnce(&mut SidebandRecord)) {
        self.recorder.with(|r| {
            if let Some(s) = r.sidebands.get_mut(self.index) {
                f(s)
            }
        })
    }

    pub fn client_event(&self, event: Value) {
        let at = self.recorder.moment();
        self.update(|s| s.client_events.push(SidebandEvent { at, event }))
    }

    /// Records the end once (the first one wins).
    pub fn ended(&self, kind: SidebandEndKind) {
        let at = self.recorder.moment();
        self.update(|s| {
            s.ended.get_or_insert(SidebandEnd { kind, at });
        })
    }
}
