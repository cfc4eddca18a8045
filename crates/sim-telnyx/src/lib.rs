//! A local, protocol-faithful Telnyx for tests, benchmarks and the keyless sandbox.
//!
//! * Call Control REST (`POST /v2/calls`, `GET /v2/calls/{id}`, `POST /v2/calls/{id}/actions/…`:
//!   `answer`, `hangup`, `speak`, `playback_start`, `streaming_start`, `streaming_stop`,
//!   `client_state_update`, `transfer`, `bridge`) with Bearer auth, Telnyx's error bodies and codes, and `command_id` de-duplication.
//! * Ed25519-signed webhooks (`telnyx-signature-ed25519` over `"{timestamp}|{body}"`) following
//!   a scripted callee's life cycle, with retries and injectable faults.
//! * The media stream WebSocket client (`connected`/`start`/`media`/`stop`, and the app's
//!   `media`/`mark`/`clear` in `rtp` mode) at real 20 ms pacing.
//!
//! Everything is recorded (`TelnyxSim::recorded`) and can be awaited (`TelnyxSim::wait_for`).
//!
//! # Inbound calls, answer and transfer
//!
//! Checked against team-telnyx/openapi `openapi/spec3.yml` (its July 2026 state): schemas
//! `CallInitiated`, `CallAnswered`, `CallBridged`, `CallHangup` (its `hangup_cause`,
//! `hangup_source` and `sip_hangup_cause`), `AnswerRequest`, `TransferCallRequest`,
//! `CallControlApplication` (`first_command_timeout_secs`), and the `AnswerCall` and
//! `TransferCall` operations' "Expected Webhooks".
//!
//! * `TelnyxSim::ring_inbound`: `call.initiated` with `direction: incoming`, `state: parked`.
//!   Unanswered, it ends after `Timing::first_command_timeout` (`timeout`, source `callee`), or
//!   when the caller gives up (`originator_cancel`, source `caller`). `sip_hangup_cause` is
//!   `unspecified` on inbound calls.
//! * `POST /v2/calls/{id}/actions/answer` (`AnswerRequest`, `answer_request.rs`): then
//!   `call.answered`, the stream to `stream_url` (`streaming.started` …) and the caller's script.
//!   Refused: an outgoing call, an answered call (10015), an ended call (90018), an unknown id
//!   (90015), every shape error of the schema (bad base64 `client_state`, non-ws `stream_url`,
//!   enum values, `deepfake_detection` ranges, …), stream options without `stream_url` and
//!   `stream_bidirectional_codec` without `rtp` (both Decisions). Fields the schema lacks —
//!   notably `stream_auth_token`, `stream_bidirectional_sampling_rate`, `custom_parameters` —
//!   are ignored as Telnyx ignores unknown fields: no auth header reaches the WebSocket.
//! * `POST /v2/calls/{id}/actions/transfer` (`TransferCallRequest`, `transfer_request.rs`): the
//!   agent leg (scripted with `TelnyxSim::script_agent`) joins the call's session. Webhooks:
//!   agent leg `call.initiated` (outgoing) → `call.answered` → `call.bridged`, and
//!   `call.bridged` on the original call; then `call.hangup` on both when either leaves (the
//!   other is hung up unless it set `park_after_unbridge: self`). An agent who does not answer
//!   or is busy: only its leg gets `call.hangup` (`timeout` / `user_busy`); the original call
//!   "will remain active" and gets no webhook. Refused: a call not answered yet (90034), a
//!   transfer while one rings or is bridged (Decision, 10015), missing/empty `to` (10004), a `to`
//!   that is neither E.164 (with optional `,DTMF`) nor a SIP URI and a non-E.164 `from` (10016),
//!   `timeout_secs` outside 5–600 and `time_limit_secs` outside 30–14400 (10033), bad base64
//!   `client_state`/`target_leg_client_state`, `audio_url` with `media_name`, enum values.
//! * While bridged the original call's stream keeps running (media streaming forks the leg's
//!   media; nothing in the docs stops it on a bridge): the inbound track is still the caller,
//!   the outbound track carries the agent's voice (mixed with app audio sent to `self`), and app
//!   audio sent with `stream_bidirectional_target_legs` `opposite` or `both` reaches the agent
//!   (`TransferRecord::agent_heard_app_pcm`).
//!
//!
//! # Bridge
//!
//! Checked against the same spec: schema `BridgeRequest` (all its fields: `call_control_id`,
//! `client_state`, `command_id`, `park_after_unbridge`, `hold_after_unbridge`,
//! `prevent_double_bridge`, `play_ringtone`, `ringtone`, `mute_dtmf`, `queue`, `video_room_id`,
//! `video_room_context`, `record*`), `CallBridged`, and the `BridgeCall` operation's "Expected
//! Webhooks" (`call.bridged` for leg A, `call.bridged` for leg B); the generated SDKs
//! (telnyx-python `action_bridge_params.py`, telnyx-ruby `action_bridge_params.rbi`) agree.
//!
//! * `POST /v2/calls/{id}/actions/bridge` (`bridge_request.rs`) joins two answered calls of the
//!   app, e.g. a callee and an agent dialled afterwards. Webhooks: `call.bridged` on the
//!   commanded leg, then on the other, each with its own ids and `client_state` (the command's
//!   `client_state` is the commanded leg's). `command_id` is de-duplicated per call as for every
//!   command. Recorded in `Recording::bridges` (`BridgeRecord`, `Recording::bridge_of`).
//! * While bridged each party hears the other on the bridge's own 20 ms clock
//!   (`BridgeLeg::heard_frames` / `heard_voiced_frames`), whether or not a leg streams.
//!   Decision (as for transfers): a stream still running on a bridged leg keeps running; its
//!   inbound track is still its own party, its outbound track carries the other party's voice,
//!   and app audio sent with target legs `opposite`/`both` reaches the other party
//!   (`BridgeLeg::heard_app_pcm` of that party). `streaming_stop` then `bridge` leaves no stream.
//! * When either leg hangs up, the other is hung up (`normal_clearing`, source `caller` on an
//!   outbound leg, `callee` on an inbound one) — unless it is the commanded leg and the command
//!   had `park_after_unbridge: "self"` or `hold_after_unbridge: true` (Decision: hold is
//!   treated as park), in which case it stays up with no webhook and can be bridged again.
//! * Refused: the commanded call unknown (90015), ended (90018) or not answered (90034); the
//!   other call unknown (90015), ended (90018) or not answered (90034, Decision: `play_ringtone`
//!   implies Telnyx can bridge with a ringing call; the simulator does not model that); a call
//!   bridged with itself (Decision, 10015); either call already bridged or in a transfer
//!   (10015; spec'd with `prevent_double_bridge: true`, Decision without it — Telnyx would
//!   presumably re-bridge); missing/empty `call_control_id` (10004); `queue` or `video_room_id`
//!   (they "can't be used together with" the required `call_control_id`), `video_room_context`
//!   without `video_room_id`, bad base64 `client_state`, non-boolean flags, enum values
//!   (`ringtone`, `mute_dtmf`, `record*`). `play_ringtone`, `ringtone`, `mute_dtmf` and
//!   `record*` are accepted and have no effect.
//! * A dial without `stream_url` is a plain call: no stream, and `speak`/`playback_start`
//!   work on it as on any answered call.
//!
//! Not simulated: bridging with a queue or a video room, early bridges with a ringing call,
//! re-bridging a bridged call, `reject`, early media / ringback towards the caller while the
//! agent rings.

mod amd;
mod answer_request;
mod api_error;
mod bridge_clock;
mod bridge_request;
mod call_lifecycle;
mod call_options;
mod callee_audio;
mod config;
mod dial_request;
mod fields;
mod ids;
mod inbound_call;
mod media_stream;
mod placing;
mod playout;
mod recording;
mod rest;
pub mod signing;
mod speak_request;
mod state;
pub mod stream_frames;
mod transfer_request;
mod webhooks;
mod ws_connect;

pub use config::{
    random_seed, Agent, AmdVerdict, Callee, Caller, CommandFault, DialFault, Line, SimConfig,
    Timing, WebhookFaults,
};
pub use recording::{
    BridgeLeg, BridgeOutcome, BridgeRecord, CommandRecord, DialRecord, InboundRecord, MarkEcho,
    Recording, StreamErrorSent, StreamOutcome, StreamRecord, TransferOutcome, TransferRecord,
    WebhookFault, WebhookRecord,
};
pub use ws_connect::AUTH_HEADER as STREAM_AUTH_HEADER;

use callee_audio::{CallerScript, Script};
use signing::Signer;
use state::{lock, Shared};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running simulator. Dropping it without `shutdown` leaves its tasks running until the
/// runtime ends.
pub struct TelnyxSim {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl TelnyxSim {
    /// Binds the REST API and starts serving.
    pub async fn start(cfg: SimConfig) -> anyhow::Result<TelnyxSim> {
        // reqwest is built without a default rustls provider; ring is the project's choice.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| anyhow::anyhow!("webhook HTTP client: {e}"))?;
        let signer = Signer::from_seed(&cfg.signing_seed)?;
        let mut other = cfg.signing_seed;
        other.iter_mut().for_each(|b| *b ^= 0xA5);
        let forger = Signer::from_seed(&other)?;
        let listener = TcpListener::bind(cfg.bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(cfg.webhook_faults.clone()),
            dial_fault: Mutex::new(None),
            command_faults: Mutex::new(HashMap::new()),
            cfg,
            signer,
            forger,
            recorder: recording::Recorder::new(),
            http,
            calls: Mutex::new(HashMap::new()),
            scripts: Mutex::new(HashMap::new()),
            default_script: Mutex::new(None),
            agents: Mutex::new(HashMap::new()),
            answers: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        });
        let server = tokio::spawn(rest::serve(listener, shared.clone()));
        Ok(TelnyxSim {
            shared,
            addr,
            server,
        })
    }

    /// `http://127.0.0.1:PORT` (the app appends `/v2/calls`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The account's webhook public key: raw 32-byte Ed25519 key, base64 (as in the portal).
    pub fn public_key_base64(&self) -> String {
        self.shared.signer.public_key_base64()
    }

    /// Scripts what happens when `to_e164` is dialled (default: a human who answers and says a
    /// 1 s tone). Fails on a WAV that is not 16-bit PCM at 8 kHz.
    pub fn script_callee(&self, to_e164: &str, callee: Callee) -> anyhow::Result<()> {
        let script = Script::from_callee(callee)?;
        lock(&self.shared.scripts).insert(to_e164.to_owned(), script);
        Ok(())
    }

    /// Scripts every number that has no script of its own (the sandbox does not know in advance
    /// which number the visitor gives).
    pub fn script_default_callee(&self, callee: Callee) -> anyhow::Result<()> {
        let script = Script::from_callee(callee)?;
        *lock(&self.shared.default_script) = Some(script);
        Ok(())
    }

    /// A call arrives on the account's connection from `from_e164` to `to_e164` (one of
    /// `SimConfig::from_numbers`): `call.initiated` (`direction: incoming`, `state: parked`) is
    /// sent, then the call waits for the app's `answer` and follows `caller`. Returns its
    /// `call_control_id`. Fails on a number that is not E.164 or not the account's, on a WAV
    /// that is not 8 kHz, and outside a Tokio runtime.
    pub fn ring_inbound(
        &self,
        from_e164: &str,
        to_e164: &str,
        caller: Caller,
    ) -> anyhow::Result<String> {
        if !fields::is_e164(from_e164) {
            anyhow::bail!("caller number {from_e164} is not E.164");
        }
        if !self.shared.cfg.from_numbers.iter().any(|n| n == to_e164) {
            anyhow::bail!(
                "{to_e164} is not a number of the account: its calls do not reach this connection"
            );
        }
        tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("ring_inbound needs a Tokio runtime"))?;
        let caller = CallerScript::from_caller(caller)?;
        let info = placing::inbound(&self.shared, from_e164, to_e164, caller);
        let now = self.shared.recorder.now_ms();
        let rec = InboundRecord {
            at_ms: now,
            call_control_id: info.call_control_id.clone(),
            from: from_e164.to_owned(),
            to: to_e164.to_owned(),
            answer: None,
            answer_ignored_fields: Vec::new(),
            answered_at_ms: None,
            hangup_cause: None,
            hangup_source: None,
            ended_at_ms: None,
        };
        self.shared.recorder.with(|r| r.inbound.push(rec));
        Ok(info.call_control_id.clone())
    }

    /// Scripts the human agent reached when a call is transferred to `to_e164` (unscripted
    /// numbers do not answer). Fails on a WAV that is not 16-bit PCM at 8 kHz.
    pub fn script_agent(&self, to_e164: &str, agent: Agent) -> anyhow::Result<()> {
        let script = Script::from_agent(agent)?;
        lock(&self.shared.agents).insert(to_e164.to_owned(), script);
        Ok(())
    }

    /// Changes the webhook faults for events emitted from now on.
    pub fn set_webhook_faults(&self, faults: WebhookFaults) {
        *lock(&self.shared.faults) = faults;
    }

    /// Arms a `POST /v2/calls` fault for the next `count` accepted dials (new calls and
    /// `command_id` duplicates alike; refused dials do not count). Each such dial does all its
    /// work — a new call rings, sends its webhooks and opens its media stream; a duplicate still
    /// places nothing — and then its answer is a 500 (`PlaceThen500`) or held back for
    /// `Timing::dial_hold` (`PlaceThenTimeout`). `count = 0` disarms. A later retry with the same
    /// `command_id` inside `Timing::dedupe_window` is answered with the original call's 200
    /// (Telnyx ignores duplicate command ids; what it answers to them is not documented).
    pub fn fail_next_dials(&self, fault: DialFault, count: u32) {
        *lock(&self.shared.dial_fault) = (count > 0).then_some((fault, count));
    }

    /// Refuses the next `count` valid `command`s (`"speak"`, `"hangup"`, …) with `fault`;
    /// a refused command does nothing. `count = 0` disarms.
    pub fn fail_next_commands(&self, command: &str, fault: CommandFault, count: u32) {
        let mut armed = lock(&self.shared.command_faults);
        if count == 0 {
            armed.remove(command);
        } else {
            armed.insert(command.to_owned(), (fault, count));
        }
    }

    /// A snapshot of everything recorded so far.
    pub fn recorded(&self) -> Recording {
        self.shared.recorder.snapshot()
    }

    /// Waits until `pred` holds on the recording (re-checked on every change), without sleeping.
    /// Returns the recording that satisfied it, or an error after `timeout`.
    pub async fn wait_for<F>(&self, mut pred: F, timeout: Duration) -> anyhow::Result<Recording>
    where
        F: FnMut(&Recording) -> bool,
    {
        let mut changes = self.shared.recorder.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(r) = self.shared.recorder.check(&mut pred) {
                return Ok(r);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => anyhow::bail!("simulator stopped while waiting"),
                Err(_) => {
                    let r = self.recorded();
                    anyhow::bail!(
                        "condition not met within {timeout:?}: {} dials, {} commands, webhooks {:?}, {} streams",
                        r.dials.len(),
                        r.commands.len(),
                        r.webhooks.iter().map(|w| (&w.event_type[..], w.status)).collect::<Vec<_>>(),
                        r.streams.len()
                    )
                }
            }
        }
    }

    /// Stops serving and aborts every call, stream and webhook task.
    pub async fn shutdown(self) {
        self.server.abort();
        let _ = self.server.await;
        let tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        for t in tasks {
            t.abort();
        }
        lock(&self.shared.calls).clear();
    }
}
