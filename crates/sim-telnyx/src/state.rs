//! State shared by the REST server, the call tasks, the webhook senders and the stream clients.

use crate::answer_request::AnswerParams;
use crate::call_options::Routing;
use crate::callee_audio::Script;
use crate::config::{CommandFault, DialFault, SimConfig, WebhookFaults};
use crate::dial_request::{DialParams, StreamParams};
use crate::recording::Recorder;
use crate::signing::Signer;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

/// Immutable facts about a call.
#[derive(Debug)]
pub(crate) struct CallInfo {
    pub call_control_id: String,
    pub call_leg_id: String,
    pub call_session_id: String,
    pub from: String,
    pub to: String,
    pub connection_id: String,
    pub start_time: String,
    /// What placed the call. An inbound call has a stand-in (no stream, no AMD, default
    /// limits): its options come with the answer.
    pub dial: DialParams,
    pub direction: Direction,
    /// For an agent leg placed by a transfer: the call being transferred.
    pub transfer_of: Option<TransferLink>,
}

/// What an agent leg knows of the transfer that placed it.
#[derive(Debug, Clone)]
pub(crate) struct TransferLink {
    pub original: String,
    /// The original call's `park_after_unbridge: self`.
    pub park_after_unbridge: bool,
    /// `audio_url` / `media_name` played to the agent before the bridge.
    pub announce: Option<String>,
    /// Index of the `TransferRecord`.
    pub transfer_idx: usize,
}

/// `direction` of `call.initiated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Outgoing,
    Incoming,
}

/// The other leg of a bridge, as the stream of this leg needs it: what its party says (PCMU,
/// from `audio_from` on) and where to record what it hears of the app.
#[derive(Debug)]
pub(crate) struct BridgePeer {
    pub call_control_id: String,
    pub audio: Arc<Vec<u8>>,
    pub audio_from: Instant,
    /// The record this bridge belongs to.
    pub link: PeerLink,
    /// The leg holding this peer stays up when the peer leaves (`park_after_unbridge: self`,
    /// or the bridge command's `hold_after_unbridge`).
    pub park_after_unbridge: bool,
}

/// Which record a bridge belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerLink {
    /// Index of the `TransferRecord` whose agent leg is the peer.
    Transfer(usize),
    /// Index of the `BridgeRecord`; `peer_is_with`: the peer is the bridge's `with` leg (the
    /// body's `call_control_id`), so the holder is the commanded leg.
    Bridge { idx: usize, peer_is_with: bool },
}

/// What a leg's party says from the answer on (PCMU), for whoever it is bridged to.
#[derive(Debug, Clone)]
pub(crate) struct Voice {
    pub audio: Arc<Vec<u8>>,
    pub from: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Ringing,
    Answered,
    Ended,
}

/// Requests from the REST side to a call's task.
#[derive(Debug)]
pub(crate) enum CallCmd {
    Hangup,
    StreamingStart(StreamParams),
    StreamingStop,
    Speak,
    Playback {
        media: Value,
    },
    /// The app answered an inbound call.
    Answer(Box<AnswerParams>),
    /// The agent leg answered: bridge with it. `ack` says whether this call was still up.
    Bridge {
        peer: Arc<BridgePeer>,
        ack: oneshot::Sender<bool>,
    },
    /// The app's `bridge` joined this leg with another answered call (the REST side already
    /// linked both entries): start hearing it and send `call.bridged`.
    Bridged(Arc<BridgePeer>),
    /// The leg this call is bridged to (or the agent leg it is transferring to) ended.
    OppositeEnded,
}

pub(crate) struct CallEntry {
    pub info: std::sync::Arc<CallInfo>,
    pub client_state: Option<String>,
    pub phase: Phase,
    pub streaming: bool,
    pub answer_time: Option<String>,
    pub end_time: Option<String>,
    pub answered_at: Option<Instant>,
    pub ended_at: Option<Instant>,
    pub cmd_tx: UnboundedSender<CallCmd>,
    /// Webhook URLs and retry policies (from the dial, or the inbound call's answer).
    pub routing: Routing,
    /// The agent leg being transferred to or bridged with (on the original call), or the call
    /// being transferred (on the agent leg).
    pub peer: Option<String>,
    /// Both legs are bridged.
    pub bridged: bool,
    /// What this leg's party says, once answered (set when the answered phase starts).
    pub voice: Option<Voice>,
}

impl CallEntry {
    pub fn new(info: Arc<CallInfo>, cmd_tx: UnboundedSender<CallCmd>, routing: Routing) -> Self {
        CallEntry {
            client_state: info.dial.client_state.clone(),
            peer: info.transfer_of.as_ref().map(|t| t.original.clone()),
            info,
            phase: Phase::Ringing,
            streaming: false,
            answer_time: None,
            end_time: None,
            answered_at: None,
            ended_at: None,
            cmd_tx,
            routing,
            bridged: false,
            voice: None,
        }
    }
}

/// A stored answer to a command, replayed for a duplicate `command_id`.
pub(crate) struct StoredAnswer {
    pub at: Instant,
    pub status: u16,
    pub body: Value,
}

pub(crate) struct Shared {
    pub cfg: SimConfig,
    pub signer: Signer,
    /// Another key, for forged webhook copies.
    pub forger: Signer,
    pub recorder: Recorder,
    pub http: reqwest::Client,
    pub calls: Mutex<HashMap<String, CallEntry>>,
    pub scripts: Mutex<HashMap<String, Script>>,
    /// For numbers without a script (`None`: `Script::default_human`).
    pub default_script: Mutex<Option<Script>>,
    /// Agents reached by transfers, by number (unscripted: no answer).
    pub agents: Mutex<HashMap<String, Script>>,
    pub answers: Mutex<HashMap<String, StoredAnswer>>,
    pub faults: Mutex<WebhookFaults>,
    /// Armed `POST /v2/calls` fault and how many more accepted dials it hits.
    pub dial_fault: Mutex<Option<(DialFault, u32)>>,
    /// Armed command faults: command name → (fault, how many more commands it refuses).
    pub command_faults: Mutex<HashMap<String, (CommandFault, u32)>>,
    pub tasks: Mutex<Vec<AbortHandle>>,
}

/// Locks a mutex, ignoring poisoning (a panicked task must not take the simulator down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn client_state(&self, call_control_id: &str) -> Option<String> {
        lock(&self.calls)
            .get(call_control_id)
            .and_then(|c| c.client_state.clone())
    }

    pub fn update<R>(
        &self,
        call_control_id: &str,
        f: impl FnOnce(&mut CallEntry) -> R,
    ) -> Option<R> {
        lock(&self.calls).get_mut(call_control_id).map(f)
    }

    /// Consumes one use of the armed dial fault.
    pub fn take_dial_fault(&self) -> Option<DialFault> {
        let mut armed = lock(&self.dial_fault);
        let (fault, left) = (*armed)?;
        *armed = (left > 1).then_some((fault, left - 1));
        Some(fault)
    }

    /// Consumes one use of the fault armed for `command`, if any.
    pub fn take_command_fault(&self, command: &str) -> Option<CommandFault> {
        let mut armed = lock(&self.command_faults);
        let (fault, left) = armed.get(command).copied()?;
        if left > 1 {
            armed.insert(command.to_owned(), (fault, left - 1));
        } else {
            armed.remove(command);
        }
        Some(fault)
    }

    /// Sends to a call's task; false when the call is unknown or its task is gone.
    pub fn send(&self, call_control_id: &str, cmd: CallCmd) -> bool {
        lock(&self.calls)
            .get(call_control_id)
            .is_some_and(|c| c.cmd_tx.send(cmd).is_ok())
    }

    pub fn track_task(&self, h: AbortHandle) {
        let mut tasks = lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(h);
    }

    /// The stored answer for `key` if it is inside the dedupe window.
    pub fn stored_answer(&self, key: &str) -> Option<(u16, Value)> {
        let window = self.cfg.timing.dedupe_window;
        let mut answers = lock(&self.answers);
        answers.retain(|_, a| a.at.elapsed() < window);
        answers.get(key).map(|a| (a.status, a.body.clone()))
    }

    pub fn store_answer(&self, key: String, status: u16, body: Value) {
        lock(&self.answers).insert(
            key,
            StoredAnswer {
                at: Instant::now(),
                status,
                body,
            },
        );
    }
}
