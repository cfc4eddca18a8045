//! One call leg from its first webhook to its hang-up. Outbound legs (dials, and the agent legs
//! of transfers) ring and meet their scripted callee here; inbound legs are parked until the
//! app answers (`inbound_call.rs`). Once answered, every leg runs the same loop: answering
//! machine detection, the media stream, app commands, bridges, and the closing webhooks.

use crate::amd::{self, AmdEvent, Answerer};
use crate::callee_audio::{self, Script};
use crate::config::AmdVerdict;
use crate::dial_request::StreamParams;
use crate::ids;
use crate::media_stream::{self, StreamEnd, StreamHandle, StreamSetup};
use crate::recording::TransferOutcome;
use crate::state::{
    lock, BridgePeer, CallCmd, CallInfo, Direction, PeerLink, Phase, Shared, Voice,
};
use crate::webhooks::Hooks;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{oneshot, watch};
use tokio::time::sleep_until;

enum Timer {
    Amd(AmdEvent),
    CalleeHangup,
    TimeLimit,
    /// `call.speak.ended` or `call.playback.ended` (prefix `call.speak` / `call.playback`).
    MediaEnded {
        prefix: &'static str,
        extra: Value,
    },
}

/// How the call ends: `hangup_cause`, `hangup_source`, `sip_hangup_cause`.
pub(crate) struct Ending {
    pub cause: &'static str,
    pub source: &'static str,
    pub sip: &'static str,
}

impl Ending {
    /// `sip_hangup_cause` is "unspecified" when "the SIP response is unavailable (in inbound
    /// calls for example)" (schema `CallHangup`); outbound legs carry the SIP code.
    fn sip(dir: Direction, code: &'static str) -> &'static str {
        match dir {
            Direction::Outgoing => code,
            Direction::Incoming => "unspecified",
        }
    }

    /// The party at the far end hung up (the callee of an outbound leg, the caller of an
    /// inbound one).
    pub fn remote(dir: Direction) -> Ending {
        let source = match dir {
            Direction::Outgoing => "callee",
            Direction::Incoming => "caller",
        };
        Ending {
            cause: "normal_clearing",
            source,
            sip: Ending::sip(dir, "200"),
        }
    }

    /// Telnyx's side hung up (the app's `hangup`, or the end of a bridge): the caller of an
    /// outbound leg, the callee of an inbound one.
    pub fn local(dir: Direction, cause: &'static str, sip: &'static str) -> Ending {
        let source = match dir {
            Direction::Outgoing => "caller",
            Direction::Incoming => "callee",
        };
        Ending {
            cause,
            source,
            sip: Ending::sip(dir, sip),
        }
    }
}

pub(crate) struct Call {
    pub shared: Arc<Shared>,
    pub info: Arc<CallInfo>,
    pub hooks: Hooks,
    stream: Option<StreamHandle>,
    agenda: Vec<(Instant, Timer)>,
    /// The other leg of the current bridge, as the media stream sees it.
    bridge: watch::Sender<Option<Arc<BridgePeer>>>,
}

/// What the answered phase needs.
pub(crate) struct Answered {
    /// What the far party says (PCMU) from the answer on.
    pub audio: Arc<Vec<u8>>,
    pub answered_at: Instant,
    pub amd_mode: String,
    pub who: Answerer,
    pub hang_up_after: Option<Duration>,
    pub stream: Option<StreamParams>,
    pub time_limit: Duration,
}

impl Call {
    pub fn new(shared: Arc<Shared>, info: Arc<CallInfo>) -> Call {
        let hooks = Hooks::start(shared.clone(), info.clone());
        Call {
            shared,
            info,
            hooks,
            stream: None,
            agenda: Vec::new(),
            bridge: watch::channel(None).0,
        }
    }

    fn dir(&self) -> Direction {
        self.info.direction
    }

    /// Marks the call answered (state and `call.answered`).
    pub fn mark_answered(&self) -> Instant {
        let answered_at = Instant::now();
        let answer_time = ids::now_iso();
        self.shared.update(&self.info.call_control_id, |c| {
            if c.phase == Phase::Ringing {
                c.phase = Phase::Answered;
            }
            c.answer_time = Some(answer_time.clone());
            c.answered_at = Some(answered_at);
        });
        self.hooks.emit(
            "call.answered",
            json!({"state": "answered", "start_time": self.info.start_time}),
        );
        answered_at
    }
}

/// An outbound leg: a dial, or the agent leg of a transfer.
pub(crate) async fn run(
    shared: Arc<Shared>,
    info: Arc<CallInfo>,
    script: Script,
    mut cmds: UnboundedReceiver<CallCmd>,
) {
    let mut call = Call::new(shared, info);
    let t = call.shared.cfg.timing.clone();
    call.hooks.emit(
        "call.initiated",
        json!({"direction": "outgoing", "state": "bridging", "caller_id_name": call.info.from,
               "start_time": call.info.start_time,
               "connection_codecs": "G722,PCMU,PCMA,G729,OPUS", "offered_codecs": "PCMU,PCMA,G722"}),
    );

    let ring_for = match &script {
        Script::NoAnswer => t
            .no_answer_after
            .unwrap_or(Duration::from_secs(call.info.dial.timeout_secs)),
        Script::Busy | Script::Rejected => t.busy_after,
        _ => t.ring,
    };
    let ring_end = Instant::now() + ring_for;
    let cancel = Ending {
        cause: "originator_cancel",
        source: "caller",
        sip: "487",
    };
    loop {
        tokio::select! {
            _ = sleep_until(ring_end.into()) => break,
            cmd = cmds.recv() => match cmd {
                // The app hangs up, or the call a transfer leg rings for ends: the ringing is
                // cancelled.
                Some(CallCmd::Hangup | CallCmd::OppositeEnded) => return call.finish(cancel).await,
                Some(_) => {}
                None => return,
            },
        }
    }
    let (audio, who, callee_hangup) = match script {
        Script::NoAnswer => {
            let cause = if call.info.dial.retry_on_timeout {
                "timeout"
            } else {
                "no_answer"
            };
            return call
                .finish(Ending {
                    cause,
                    source: "callee",
                    sip: "480",
                })
                .await;
        }
        Script::Busy => {
            return call
                .finish(Ending {
                    cause: "user_busy",
                    source: "callee",
                    sip: "486",
                })
                .await
        }
        Script::Rejected => {
            return call
                .finish(Ending {
                    cause: "call_rejected",
                    source: "callee",
                    sip: "603",
                })
                .await
        }
        Script::Human {
            speech,
            hang_up_after,
        } => {
            let who = Answerer {
                verdict: AmdVerdict::HumanResidence,
                beep_at: None,
            };
            (speech, who, hang_up_after)
        }
        Script::Voicemail { greeting } => {
            let beep_at = callee_audio::pcmu_duration(greeting.len());
            let mut audio = greeting;
            let beep = callee_audio::beep();
            let beep_end = beep_at + callee_audio::pcmu_duration(beep.len());
            audio.extend(beep);
            let who = Answerer {
                verdict: AmdVerdict::Machine,
                beep_at: Some(beep_end),
            };
            (audio, who, Some(beep_end + t.voicemail_hang_up_after))
        }
        Script::Answering {
            audio,
            verdict,
            beep_after,
            hang_up_after,
        } => {
            let mut audio = audio;
            let beep_at = beep_after.inspect(|end| {
                // The beep ends where the script puts it (that is when it is detected): the
                // audio is cut there, as a greeting ends with its beep.
                let bytes_per_ms = callway_audio::PCMU_RATE_HZ as usize / 1000;
                let mut beep = callee_audio::beep();
                let end_byte = end.as_millis() as usize * bytes_per_ms;
                if beep.len() > end_byte {
                    beep.drain(..beep.len() - end_byte);
                }
                audio.resize(end_byte - beep.len(), callway_audio::mulaw::SILENCE);
                audio.extend(beep);
            });
            (audio, Answerer { verdict, beep_at }, hang_up_after)
        }
    };

    let answered_at = call.mark_answered();
    let audio = Arc::new(audio);
    if let Err(end) = call
        .bridge_to_original(&audio, answered_at, &mut cmds)
        .await
    {
        if let Some(end) = end {
            call.finish(end).await;
        }
        return;
    }
    let time_limit = t
        .time_limit
        .unwrap_or(Duration::from_secs(call.info.dial.time_limit_secs));
    let answered = Answered {
        audio,
        answered_at,
        amd_mode: call.info.dial.amd.clone(),
        who,
        hang_up_after: callee_hangup,
        stream: call.info.dial.stream.clone(),
        time_limit,
    };
    call.answered(answered, cmds).await
}

enum Step {
    Timer(usize),
    Cmd(Option<CallCmd>),
    StreamEnded(StreamEnd),
}

impl Call {
    /// An agent leg that answered: the announcement plays to the agent, then the original call
    /// is asked to bridge. `Err` when the leg must end instead (with this ending; `None`: the
    /// simulator is shutting down). Other legs pass straight through.
    async fn bridge_to_original(
        &mut self,
        audio: &Arc<Vec<u8>>,
        answered_at: Instant,
        cmds: &mut UnboundedReceiver<CallCmd>,
    ) -> Result<(), Option<Ending>> {
        let Some(link) = self.info.transfer_of.clone() else {
            return Ok(());
        };
        let now_ms = self.shared.recorder.now_ms();
        self.shared.recorder.with(|r| {
            if let Some(t) = r.transfers.get_mut(link.transfer_idx) {
                t.outcome = TransferOutcome::AgentAnswered;
                t.agent_answered_at_ms = Some(now_ms);
            }
        });
        let hangup = Ending::local(self.dir(), "normal_clearing", "200");
        if link.announce.is_some() {
            let until = Instant::now() + self.shared.cfg.timing.transfer_announce;
            loop {
                tokio::select! {
                    _ = sleep_until(until.into()) => break,
                    cmd = cmds.recv() => match cmd {
                        Some(CallCmd::Hangup | CallCmd::OppositeEnded) => return Err(Some(hangup)),
                        Some(_) => {}
                        None => return Err(None),
                    },
                }
            }
        }
        let peer = Arc::new(BridgePeer {
            call_control_id: self.info.call_control_id.clone(),
            audio: audio.clone(),
            audio_from: answered_at,
            link: PeerLink::Transfer(link.transfer_idx),
            park_after_unbridge: link.park_after_unbridge,
        });
        let (ack, ok) = oneshot::channel();
        let sent = self
            .shared
            .send(&link.original, CallCmd::Bridge { peer, ack });
        // The original call's task answers at once unless it is gone; bounded all the same.
        let bridged = sent
            && matches!(
                tokio::time::timeout(Duration::from_secs(3), ok).await,
                Ok(Ok(true))
            );
        if !bridged {
            return Err(Some(hangup));
        }
        self.shared
            .update(&self.info.call_control_id, |c| c.bridged = true);
        self.hooks.emit("call.bridged", json!({}));
        Ok(())
    }

    /// The answered phase, shared by every leg.
    pub async fn answered(mut self, a: Answered, mut cmds: UnboundedReceiver<CallCmd>) {
        let t = self.shared.cfg.timing.clone();
        let answered_at = a.answered_at;
        let audio = a.audio;
        let voice = Voice {
            audio: audio.clone(),
            from: answered_at,
        };
        self.shared
            .update(&self.info.call_control_id, |c| c.voice = Some(voice));
        if let Some(p) = a.stream {
            self.start_stream(p, audio.clone(), answered_at);
        }
        for e in amd::schedule(&a.amd_mode, a.who, t.amd_analysis, t.no_beep_after) {
            self.agenda.push((answered_at + e.after, Timer::Amd(e)));
        }
        if let Some(d) = a.hang_up_after {
            self.agenda.push((answered_at + d, Timer::CalleeHangup));
        }
        self.agenda
            .push((answered_at + a.time_limit, Timer::TimeLimit));

        loop {
            let next = self
                .agenda
                .iter()
                .enumerate()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(i, (at, _))| (i, *at));
            let ev = {
                let stream_done = async {
                    match self.stream.as_mut() {
                        Some(h) => (&mut h.done).await.unwrap_or(StreamEnd::ClosedByApp),
                        None => std::future::pending().await,
                    }
                };
                let timer = async {
                    match next {
                        Some((i, at)) => {
                            sleep_until(at.into()).await;
                            i
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    i = timer => Step::Timer(i),
                    cmd = cmds.recv() => Step::Cmd(cmd),
                    end = stream_done => Step::StreamEnded(end),
                }
            };
            match ev {
                Step::Timer(i) => {
                    let (_, timer) = self.agenda.swap_remove(i);
                    match timer {
                        Timer::Amd(e) => self.hooks.emit(e.event_type, json!({"result": e.result})),
                        Timer::CalleeHangup => {
                            let end = Ending::remote(self.dir());
                            return self.finish(end).await;
                        }
                        Timer::TimeLimit => {
                            let end = Ending {
                                cause: "time_limit",
                                source: "unknown",
                                sip: Ending::sip(self.dir(), "200"),
                            };
                            return self.finish(end).await;
                        }
                        Timer::MediaEnded { prefix, mut extra } => {
                            extra["status"] = json!("completed");
                            self.hooks.emit(&format!("{prefix}.ended"), extra);
                        }
                    }
                }
                Step::Cmd(None) => return,
                Step::Cmd(Some(cmd)) => match cmd {
                    CallCmd::Hangup => {
                        let end = Ending::local(self.dir(), "normal_clearing", "200");
                        return self.finish(end).await;
                    }
                    CallCmd::StreamingStart(p) => {
                        if self.stream.is_none() {
                            self.start_stream(p, audio.clone(), answered_at);
                        }
                    }
                    CallCmd::StreamingStop => self.stop_stream().await,
                    CallCmd::Speak => self.start_media("call.speak", json!({})),
                    CallCmd::Playback { media } => self.start_media("call.playback", media),
                    // The REST side refuses a second answer; nothing to do.
                    CallCmd::Answer(_) => {}
                    CallCmd::Bridge { peer, ack } => self.bridge_with(peer, ack),
                    // The REST side linked both entries while both were up: the bridge is
                    // made, even if the other leg has left since (its `OppositeEnded` comes
                    // after this and ends the bridge).
                    CallCmd::Bridged(peer) => {
                        self.bridge.send_replace(Some(peer));
                        self.hooks.emit("call.bridged", json!({}));
                    }
                    CallCmd::OppositeEnded => {
                        if let Some(end) = self.unbridge() {
                            return self.finish(end).await;
                        }
                    }
                },
                Step::StreamEnded(end) => {
                    self.stream = None;
                    self.shared
                        .update(&self.info.call_control_id, |c| c.streaming = false);
                    if end == StreamEnd::ClosedByApp {
                        self.emit_stream_stopped();
                    }
                }
            }
        }
    }

    /// The original call bridges with its answering agent leg (`call.bridged` for this leg; the
    /// agent leg sends its own).
    fn bridge_with(&mut self, peer: Arc<BridgePeer>, ack: oneshot::Sender<bool>) {
        let now_ms = self.shared.recorder.now_ms();
        if let PeerLink::Transfer(idx) = peer.link {
            self.shared.recorder.with(|r| {
                if let Some(t) = r.transfers.get_mut(idx) {
                    t.outcome = TransferOutcome::Bridged;
                    t.bridged_at_ms = Some(now_ms);
                }
            });
        }
        self.shared.update(&self.info.call_control_id, |c| {
            c.bridged = true;
            c.peer = Some(peer.call_control_id.clone());
        });
        self.bridge.send_replace(Some(peer));
        self.hooks.emit("call.bridged", json!({}));
        let _ = ack.send(true);
    }

    /// The other leg ended. Returns how this leg ends, or `None` when it stays up: it was not
    /// bridged (a transfer that failed leaves the original call as it was), or it parks.
    fn unbridge(&mut self) -> Option<Ending> {
        let peer = self.bridge.send_replace(None);
        self.shared.update(&self.info.call_control_id, |c| {
            c.bridged = false;
            c.peer = None;
        });
        let bridged = peer.is_some() || self.info.transfer_of.is_some();
        let parks = peer.is_some_and(|p| p.park_after_unbridge);
        // "If not set, the default behavior is to hang up the leg" (`park_after_unbridge`).
        (bridged && !parks).then(|| Ending::local(self.dir(), "normal_clearing", "200"))
    }

    fn start_stream(&mut self, params: StreamParams, audio: Arc<Vec<u8>>, answered_at: Instant) {
        self.shared
            .update(&self.info.call_control_id, |c| c.streaming = true);
        self.stream = Some(media_stream::spawn(StreamSetup {
            shared: self.shared.clone(),
            info: self.info.clone(),
            hooks: self.hooks.clone(),
            params,
            callee_audio: audio,
            answered_at,
            bridge: self.bridge.subscribe(),
        }));
    }

    fn emit_stream_stopped(&self) {
        let url = self.info.dial.stream.as_ref().map(|s| s.url.clone());
        let url = self
            .shared
            .recorder
            .read(|r| {
                r.stream_for(&self.info.call_control_id)
                    .map(|s| s.url.clone())
            })
            .or(url);
        self.hooks
            .emit("streaming.stopped", json!({"stream_url": url}));
    }

    async fn stop_stream(&mut self) {
        if let Some(h) = self.stream.take() {
            let end = h.stop().await;
            self.shared
                .update(&self.info.call_control_id, |c| c.streaming = false);
            if end != StreamEnd::Failed {
                self.emit_stream_stopped();
            }
        }
    }

    fn start_media(&mut self, prefix: &'static str, extra: Value) {
        self.hooks.emit(&format!("{prefix}.started"), extra.clone());
        let at = Instant::now() + self.shared.cfg.timing.speak_duration;
        self.agenda.push((at, Timer::MediaEnded { prefix, extra }));
    }

    /// Stream `stop` + `streaming.stopped`, pending speak/playback ended by the hang-up,
    /// `call.hangup`; then the other leg (bridged, or a transfer still ringing) is told.
    pub async fn finish(mut self, ending: Ending) {
        self.stop_stream().await;
        for (_, timer) in std::mem::take(&mut self.agenda) {
            if let Timer::MediaEnded { prefix, mut extra } = timer {
                extra["status"] = json!("call_hangup");
                self.hooks.emit(&format!("{prefix}.ended"), extra);
            }
        }
        let end_time = ids::now_iso();
        let me = self.info.call_control_id.clone();
        let peer = self
            .shared
            .update(&me, |c| {
                c.phase = Phase::Ended;
                c.end_time = Some(end_time.clone());
                c.ended_at = Some(Instant::now());
                c.bridged = false;
                c.peer.take()
            })
            .flatten();
        let packets = self
            .shared
            .recorder
            .read(|r| r.stream_for(&me).map(|s| s.media_frames_sent))
            .unwrap_or(0);
        let now_ms = self.shared.recorder.now_ms();
        self.shared
            .recorder
            .with(|r| r.note_hangup(&me, ending.cause, ending.source, now_ms));
        self.hooks.emit(
            "call.hangup",
            json!({
                "state": "hangup",
                "hangup_cause": ending.cause,
                "hangup_source": ending.source,
                "sip_hangup_cause": ending.sip,
                "start_time": self.info.start_time,
                "end_time": end_time,
                "call_quality_stats": {
                    "inbound": {"jitter_max_variance": "0.00", "jitter_packet_count": "0", "mos": "4.50",
                                "packet_count": packets.to_string(), "skip_packet_count": "0"},
                    "outbound": {"packet_count": packets.to_string(), "skip_packet_count": "0"},
                },
            }),
        );
        if let Some(p) = peer {
            let linked = {
                let mut calls = lock(&self.shared.calls);
                match calls.get_mut(&p) {
                    Some(other) if other.peer.as_deref() == Some(me.as_str()) => {
                        other.peer = None;
                        true
                    }
                    _ => false,
                }
            };
            if linked {
                self.shared.send(&p, CallCmd::OppositeEnded);
            }
        }
    }
}
