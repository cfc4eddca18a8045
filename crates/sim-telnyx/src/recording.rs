//! Everything the simulator saw and did, for assertions. Times are milliseconds since the
//! simulator started.

use serde_json::Value;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::watch;

/// A `POST /v2/calls` as received, with what the simulator answered.
#[derive(Debug, Clone)]
pub struct DialRecord {
    pub at_ms: u64,
    pub raw_body: String,
    pub body: Option<Value>,
    /// The HTTP status answered; 0 when the answer was held back (`DialFault::PlaceThenTimeout`).
    pub status: u16,
    pub error_codes: Vec<String>,
    /// The call placed (or, for a duplicate, the call of the original dial).
    pub call_control_id: Option<String>,
    /// A repeated `command_id` inside the window: answered as before, no new call.
    pub duplicate: bool,
    /// The armed fault that replaced this dial's answer, if any.
    pub fault: Option<crate::config::DialFault>,
}

/// A call command (`/v2/calls/{id}/actions/{command}`) or `GET /v2/calls/{id}`.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    pub at_ms: u64,
    pub call_control_id: String,
    pub command: String,
    pub command_id: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
    pub error_codes: Vec<String>,
    pub duplicate: bool,
}

/// Why a webhook delivery is not a plain genuine one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFault {
    /// Second genuine delivery of the same event.
    Duplicate,
    /// Valid signature over a stale `telnyx-timestamp`.
    Stale,
    /// Signed with another key.
    Forged,
}

/// One HTTP delivery attempt of a webhook.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    /// When the delivery was sent (not when its answer came).
    pub at_ms: u64,
    pub call_control_id: String,
    pub event_type: String,
    /// `data.id` (identical across retries, duplicates and fault copies).
    pub id: String,
    /// `meta.attempt`.
    pub attempt: u32,
    pub url: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: String,
    /// The app's HTTP status; `None` when it did not answer (refused, timeout).
    pub status: Option<u16>,
    pub error: Option<String>,
    pub fault: Option<WebhookFault>,
    /// Delivered after a later event on purpose (out-of-order fault).
    pub reordered: bool,
}

impl WebhookRecord {
    pub fn acknowledged(&self) -> bool {
        matches!(self.status, Some(s) if (200..300).contains(&s))
    }
}

/// How a media stream connection went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOutcome {
    Connecting,
    /// The app accepted the WebSocket upgrade.
    Accepted,
    /// The app answered the upgrade with this HTTP status instead of 101.
    Refused {
        status: u16,
    },
    /// No connection (refused TCP, unsupported scheme, handshake error).
    Failed {
        reason: String,
    },
}

/// An `error` frame the simulator sent to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamErrorSent {
    pub at_ms: u64,
    pub code: u32,
    pub title: String,
}

/// A `mark` echoed back to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkEcho {
    pub at_ms: u64,
    pub name: String,
    /// Echoed because of a `clear` rather than because its audio finished playing.
    pub by_clear: bool,
}

/// One media stream (connection attempt and everything exchanged on it).
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub call_control_id: String,
    pub stream_id: String,
    pub url: String,
    /// Value sent in `x-telnyx-streaming-auth-token`, if any.
    pub auth_token_sent: Option<String>,
    /// `stream_bidirectional_target_legs` in force (`opposite` when the dial did not say).
    pub target_legs: String,
    /// App audio that played while no existing leg was targeted (`opposite` on this lone
    /// outbound leg): nobody heard it, and it is not in `played_pcm`.
    pub unheard_app_bytes: u64,
    pub outcome: StreamOutcome,
    pub connected_at_ms: Option<u64>,
    /// `media` frames sent to the app (callee audio, track `inbound`).
    pub media_frames_sent: u64,
    /// `media` messages the app sent.
    pub app_media_messages: u64,
    pub app_media_bytes: u64,
    /// Arrival time of each app `media` message.
    pub app_media_at_ms: Vec<u64>,
    /// Every app `media` payload decoded to PCM (PCMU only), in arrival order.
    pub app_pcm: Vec<i16>,
    /// What the callee actually heard, at real-time pace (after `clear` drops; only when the
    /// target legs include the callee's).
    pub played_pcm: Vec<i16>,
    /// App messages shorter than 20 ms (played, but below the documented minimum).
    pub undersized_media: u64,
    pub marks_received: Vec<String>,
    pub marks_echoed: Vec<MarkEcho>,
    pub clears_at_ms: Vec<u64>,
    /// Bytes of queued app audio discarded by `clear`.
    pub cleared_bytes: u64,
    pub errors_sent: Vec<StreamErrorSent>,
    pub stop_sent: bool,
    /// The app closed the WebSocket (or it broke) before the simulator stopped it.
    pub closed_by_app: bool,
    pub ended_at_ms: Option<u64>,
}

/// A call that arrived with `TelnyxSim::ring_inbound`.
#[derive(Debug, Clone)]
pub struct InboundRecord {
    pub at_ms: u64,
    pub call_control_id: String,
    pub from: String,
    pub to: String,
    /// The body of the answer that was accepted (the first; duplicates and refusals are only in
    /// `Recording::commands`).
    pub answer: Option<Value>,
    /// Fields of that answer that `AnswerRequest` does not have, which Telnyx ignores (e.g.
    /// `stream_auth_token`: no token header is sent on the stream).
    pub answer_ignored_fields: Vec<String>,
    pub answered_at_ms: Option<u64>,
    pub hangup_cause: Option<String>,
    pub hangup_source: Option<String>,
    pub ended_at_ms: Option<u64>,
}

/// Where a transfer's agent leg stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferOutcome {
    Ringing,
    /// The agent picked up; the bridge is not made yet (announcement playing).
    AgentAnswered,
    Bridged,
    /// The agent leg rang out (`timeout`).
    NoAnswer,
    /// `user_busy`.
    Busy,
    /// The original call ended (or the app hung up the agent leg) before the agent answered.
    Cancelled,
    /// The agent leg ended after it answered.
    Ended,
}

/// One accepted `transfer` command and the agent leg it placed.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    pub at_ms: u64,
    /// The call that was transferred.
    pub call_control_id: String,
    /// The command's body as received.
    pub body: Value,
    pub to: String,
    pub from: String,
    pub agent_call_control_id: String,
    pub outcome: TransferOutcome,
    /// `audio_url` or `media_name` played to the agent before the bridge.
    pub announce: Option<String>,
    pub park_after_unbridge: bool,
    pub agent_answered_at_ms: Option<u64>,
    pub bridged_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    pub agent_hangup_cause: Option<String>,
    /// While bridged: frames (20 ms) of the original party's audio passed to the agent, counted
    /// on the original call's media stream clock (0 when that call has no stream).
    pub agent_heard_caller_frames: u64,
    /// While bridged: the app's stream audio (PCMU decoded) that reached the agent, i.e. sent
    /// with `stream_bidirectional_target_legs` `opposite` or `both`.
    pub agent_heard_app_pcm: Vec<i16>,
}

/// Where an accepted `bridge` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeOutcome {
    /// Both legs are bridged (`call.bridged` sent, or on its way, on both).
    Bridged,
    /// One leg left; the other stayed up, parked or on hold (`park_after_unbridge: self` or
    /// `hold_after_unbridge: true` on the command).
    Unbridged,
    /// Both legs hung up.
    Ended,
}

/// One leg of a bridge: what its party heard of the other leg while bridged, and its end.
#[derive(Debug, Clone)]
pub struct BridgeLeg {
    pub call_control_id: String,
    /// This leg stays up when the other leaves (`park_after_unbridge: self` or
    /// `hold_after_unbridge: true`; only ever set on the commanded leg).
    pub stays_after_unbridge: bool,
    /// 20 ms frames of the other leg's party passed to this leg's party, on the bridge's own
    /// clock (whether or not either leg has a media stream).
    pub heard_frames: u64,
    /// Those of `heard_frames` that were not silence (the other party was speaking).
    pub heard_voiced_frames: u64,
    /// App audio (PCMU decoded) that reached this leg's party from the *other* leg's media
    /// stream, sent there with `stream_bidirectional_target_legs` `opposite` or `both`.
    pub heard_app_pcm: Vec<i16>,
    pub hangup_cause: Option<String>,
    pub hangup_source: Option<String>,
    pub ended_at_ms: Option<u64>,
}

impl BridgeLeg {
    pub(crate) fn new(call_control_id: &str, stays: bool) -> Self {
        BridgeLeg {
            call_control_id: call_control_id.to_owned(),
            stays_after_unbridge: stays,
            heard_frames: 0,
            heard_voiced_frames: 0,
            heard_app_pcm: Vec::new(),
            hangup_cause: None,
            hangup_source: None,
            ended_at_ms: None,
        }
    }
}

/// One accepted `bridge` command.
#[derive(Debug, Clone)]
pub struct BridgeRecord {
    pub at_ms: u64,
    /// The command's body as received.
    pub body: Value,
    /// The call the command was issued on (`/v2/calls/{id}/actions/bridge`).
    pub leg: BridgeLeg,
    /// The call it was bridged with (the body's `call_control_id`).
    pub with: BridgeLeg,
    pub outcome: BridgeOutcome,
    /// When the bridge ended (the first leg left).
    pub unbridged_at_ms: Option<u64>,
    /// Call control ids in the order the legs hung up.
    pub hangup_order: Vec<String>,
}

impl BridgeRecord {
    /// The leg with this call control id, if it is one of the bridge's.
    pub fn leg_of(&self, call_control_id: &str) -> Option<&BridgeLeg> {
        [&self.leg, &self.with]
            .into_iter()
            .find(|l| l.call_control_id == call_control_id)
    }
}

/// A snapshot of everything recorded.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub dials: Vec<DialRecord>,
    pub commands: Vec<CommandRecord>,
    pub webhooks: Vec<WebhookRecord>,
    pub streams: Vec<StreamRecord>,
    pub inbound: Vec<InboundRecord>,
    pub transfers: Vec<TransferRecord>,
    pub bridges: Vec<BridgeRecord>,
}

impl Recording {
    /// Event types of a call's genuine first deliveries (no retries, duplicates or fault copies),
    /// in the order they were sent.
    pub fn events_for(&self, call_control_id: &str) -> Vec<String> {
        self.webhooks
            .iter()
            .filter(|w| w.call_control_id == call_control_id && w.fault.is_none() && w.attempt == 1)
            .map(|w| w.event_type.clone())
            .collect()
    }

    /// The first genuine delivery of an event type for a call, parsed.
    pub fn event(&self, call_control_id: &str, event_type: &str) -> Option<Value> {
        self.webhooks
            .iter()
            .find(|w| {
                w.call_control_id == call_control_id
                    && w.event_type == event_type
                    && w.fault.is_none()
            })
            .and_then(|w| serde_json::from_str(&w.body).ok())
    }

    /// The latest stream of a call.
    pub fn stream_for(&self, call_control_id: &str) -> Option<&StreamRecord> {
        self.streams
            .iter()
            .rev()
            .find(|s| s.call_control_id == call_control_id)
    }

    pub fn inbound_call(&self, call_control_id: &str) -> Option<&InboundRecord> {
        self.inbound
            .iter()
            .find(|c| c.call_control_id == call_control_id)
    }

    /// The latest transfer of a call.
    pub fn transfer_of(&self, call_control_id: &str) -> Option<&TransferRecord> {
        self.transfers
            .iter()
            .rev()
            .find(|t| t.call_control_id == call_control_id)
    }

    /// The latest accepted bridge that involves a call (on either side).
    pub fn bridge_of(&self, call_control_id: &str) -> Option<&BridgeRecord> {
        self.bridges
            .iter()
            .rev()
            .find(|b| b.leg_of(call_control_id).is_some())
    }

    /// Notes a call's end on the inbound, transfer and bridge records that concern it.
    pub(crate) fn note_hangup(
        &mut self,
        call_control_id: &str,
        cause: &str,
        source: &str,
        at_ms: u64,
    ) {
        for c in self
            .inbound
            .iter_mut()
            .filter(|c| c.call_control_id == call_control_id)
        {
            c.hangup_cause = Some(cause.to_owned());
            c.hangup_source = Some(source.to_owned());
            c.ended_at_ms = Some(at_ms);
        }
        for t in self
            .transfers
            .iter_mut()
            .filter(|t| t.agent_call_control_id == call_control_id)
        {
            t.agent_hangup_cause = Some(cause.to_owned());
            t.ended_at_ms = Some(at_ms);
            t.outcome = match (t.outcome, cause) {
                (TransferOutcome::Ringing, "timeout" | "no_answer") => TransferOutcome::NoAnswer,
                (TransferOutcome::Ringing, "user_busy") => TransferOutcome::Busy,
                (TransferOutcome::Ringing, _) => TransferOutcome::Cancelled,
                _ => TransferOutcome::Ended,
            };
        }
        for b in self
            .bridges
            .iter_mut()
            .filter(|b| b.leg_of(call_control_id).is_some())
        {
            if b.hangup_order.iter().any(|id| id == call_control_id) {
                continue;
            }
            b.hangup_order.push(call_control_id.to_owned());
            let leg = if b.leg.call_control_id == call_control_id {
                &mut b.leg
            } else {
                &mut b.with
            };
            leg.hangup_cause = Some(cause.to_owned());
            leg.hangup_source = Some(source.to_owned());
            leg.ended_at_ms = Some(at_ms);
            if b.unbridged_at_ms.is_none() {
                b.unbridged_at_ms = Some(at_ms);
            }
            b.outcome = if b.hangup_order.len() == 2 {
                BridgeOutcome::Ended
            } else {
                BridgeOutcome::Unbridged
            };
        }
    }

    /// The call control id of the latest successful dial.
    pub fn last_call_control_id(&self) -> Option<String> {
        self.dials
            .iter()
            .rev()
            .find_map(|d| d.call_control_id.clone())
    }
}

/// Shared recorder: a mutex-protected `Recording` plus a change counter for `wait_for`.
pub(crate) struct Recorder {
    started: Instant,
    inner: Mutex<Recording>,
    changed: watch::Sender<u64>,
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            started: Instant::now(),
            inner: Mutex::new(Recording::default()),
            changed: watch::channel(0).0,
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Recording> {
        // A panic while holding the lock only poisons a test-side record; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mutates the recording and wakes waiters.
    pub fn with<R>(&self, f: impl FnOnce(&mut Recording) -> R) -> R {
        let r = f(&mut self.lock());
        self.changed.send_modify(|v| *v += 1);
        r
    }

    /// Reads the recording without cloning it.
    pub fn read<R>(&self, f: impl FnOnce(&Recording) -> R) -> R {
        f(&self.lock())
    }

    pub fn snapshot(&self) -> Recording {
        self.lock().clone()
    }

    /// Runs `pred` on the current recording; clones it only when `pred` holds.
    pub fn check(&self, pred: &mut impl FnMut(&Recording) -> bool) -> Option<Recording> {
        let g = self.lock();
        pred(&g).then(|| g.clone())
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
