//! One outbound call from dial to hang-up: ringing, the scripted callee's outcome, answering
//! machine detection, the media stream, app commands, and the closing webhooks.

use crate::amd::{self, AmdEvent, Answerer};
use crate::callee_audio::{self, Script};
use crate::config::AmdVerdict;
use crate::ids;
use crate::media_stream::{self, StreamEnd, StreamHandle, StreamSetup};
use crate::state::{CallCmd, CallInfo, Phase, Shared};
use crate::webhooks::Hooks;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
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
struct Ending {
    cause: &'static str,
    source: &'static str,
    sip: &'static str,
}

const APP_HANGUP: Ending = Ending {
    cause: "normal_clearing",
    source: "caller",
    sip: "200",
};
const CALLEE_HANGUP: Ending = Ending {
    cause: "normal_clearing",
    source: "callee",
    sip: "200",
};

struct Call {
    shared: Arc<Shared>,
    info: Arc<CallInfo>,
    hooks: Hooks,
    stream: Option<StreamHandle>,
    agenda: Vec<(Instant, Timer)>,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    info: Arc<CallInfo>,
    script: Script,
    mut cmds: UnboundedReceiver<CallCmd>,
) {
    let hooks = Hooks::start(shared.clone(), info.clone());
    let mut call = Call {
        shared,
        info,
        hooks,
        stream: None,
        agenda: Vec::new(),
    };
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
    loop {
        tokio::select! {
            _ = sleep_until(ring_end.into()) => break,
            cmd = cmds.recv() => match cmd {
                Some(CallCmd::Hangup) => {
                    let cancel = Ending { cause: "originator_cancel", source: "caller", sip: "487" };
                    return call.finish(cancel).await;
                }
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

    // Answered.
    let answered_at = Instant::now();
    let answer_time = ids::now_iso();
    call.shared.update(&call.info.call_control_id, |c| {
        if c.phase == Phase::Ringing {
            c.phase = Phase::Answered;
        }
        c.answer_time = Some(answer_time.clone());
        c.answered_at = Some(answered_at);
    });
    call.hooks.emit(
        "call.answered",
        json!({"state": "answered", "start_time": call.info.start_time}),
    );
    let audio = Arc::new(audio);
    if let Some(p) = call.info.dial.stream.clone() {
        call.start_stream(p, audio.clone(), answered_at);
    }
    for e in amd::schedule(&call.info.dial.amd, who, t.amd_analysis, t.no_beep_after) {
        call.agenda.push((answered_at + e.after, Timer::Amd(e)));
    }
    if let Some(d) = callee_hangup {
        call.agenda.push((answered_at + d, Timer::CalleeHangup));
    }
    let limit = t
        .time_limit
        .unwrap_or(Duration::from_secs(call.info.dial.time_limit_secs));
    call.agenda.push((answered_at + limit, Timer::TimeLimit));

    loop {
        let next = call
            .agenda
            .iter()
            .enumerate()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(i, (at, _))| (i, *at));
        let ev = {
            let stream_done = async {
                match call.stream.as_mut() {
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
                let (_, timer) = call.agenda.swap_remove(i);
                match timer {
                    Timer::Amd(e) => call.hooks.emit(e.event_type, json!({"result": e.result})),
                    Timer::CalleeHangup => return call.finish(CALLEE_HANGUP).await,
                    Timer::TimeLimit => {
                        return call
                            .finish(Ending {
                                cause: "time_limit",
                                source: "unknown",
                                sip: "200",
                            })
                            .await
                    }
                    Timer::MediaEnded { prefix, mut extra } => {
                        extra["status"] = json!("completed");
                        call.hooks.emit(&format!("{prefix}.ended"), extra);
                    }
                }
            }
            Step::Cmd(None) => return,
            Step::Cmd(Some(cmd)) => match cmd {
                CallCmd::Hangup => return call.finish(APP_HANGUP).await,
                CallCmd::StreamingStart(p) => {
                    if call.stream.is_none() {
                        call.start_stream(p, audio.clone(), answered_at);
                    }
                }
                CallCmd::StreamingStop => call.stop_stream().await,
                CallCmd::Speak => call.start_media("call.speak", json!({})),
                CallCmd::Playback { media } => call.start_media("call.playback", media),
            },
            Step::StreamEnded(end) => {
                call.stream = None;
                call.shared
                    .update(&call.info.call_control_id, |c| c.streaming = false);
                if end == StreamEnd::ClosedByApp {
                    call.emit_stream_stopped();
                }
            }
        }
    }
}

enum Step {
    Timer(usize),
    Cmd(Option<CallCmd>),
    StreamEnded(StreamEnd),
}

impl Call {
    fn start_stream(
        &mut self,
        params: crate::dial_request::StreamParams,
        audio: Arc<Vec<u8>>,
        answered_at: Instant,
    ) {
        self.shared
            .update(&self.info.call_control_id, |c| c.streaming = true);
        self.stream = Some(media_stream::spawn(StreamSetup {
            shared: self.shared.clone(),
            info: self.info.clone(),
            hooks: self.hooks.clone(),
            params,
            callee_audio: audio,
            answered_at,
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

    /// Stream `stop` + `streaming.stopped`, pending speak/playback ended by the hang-up, then
    /// `call.hangup`.
    async fn finish(mut self, ending: Ending) {
        self.stop_stream().await;
        for (_, timer) in std::mem::take(&mut self.agenda) {
            if let Timer::MediaEnded { prefix, mut extra } = timer {
                extra["status"] = json!("call_hangup");
                self.hooks.emit(&format!("{prefix}.ended"), extra);
            }
        }
        let end_time = ids::now_iso();
        self.shared.update(&self.info.call_control_id, |c| {
            c.phase = Phase::Ended;
            c.end_time = Some(end_time.clone());
            c.ended_at = Some(Instant::now());
        });
        let packets = self
            .shared
            .recorder
            .read(|r| {
                r.stream_for(&self.info.call_control_id)
                    .map(|s| s.media_frames_sent)
            })
            .unwrap_or(0);
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
    }
}
