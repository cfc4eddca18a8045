//! An inbound call (`TelnyxSim::ring_inbound`): `call.initiated` with `direction: incoming`,
//! `state: parked` (schema `CallInitiated`), then it waits for the app's `answer`.
//!
//! * Answered: `call.answered`, the media stream to the answer's `stream_url`, the caller's
//!   script, then everything an answered outbound call does (`call_lifecycle::Call::answered`).
//! * The caller gives up first: `call.hangup` `originator_cancel`, `hangup_source: caller`.
//! * The app hangs up the parked call: `normal_clearing`, `hangup_source: callee` (Telnyx's side
//!   of an inbound call is the callee).
//! * Nobody answers within `Timing::first_command_timeout` (the Call Control App's
//!   `first_command_timeout_secs`): `call.hangup` `timeout`, `hangup_source: callee`. Decision:
//!   the spec says the call "should hangup after timing out" without naming the cause;
//!   `timeout` is the `hangup_cause` enum's value for a call not answered in time.
//!
//! `sip_hangup_cause` is `unspecified` on inbound calls, as the `CallHangup` schema says.

use crate::amd::Answerer;
use crate::call_lifecycle::{Answered, Call, Ending};
use crate::callee_audio::CallerScript;
use crate::config::AmdVerdict;
use crate::state::{CallCmd, CallInfo, Shared};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::sleep_until;

pub(crate) async fn run(
    shared: Arc<Shared>,
    info: Arc<CallInfo>,
    caller: CallerScript,
    mut cmds: UnboundedReceiver<CallCmd>,
) {
    let call = Call::new(shared, info);
    let t = call.shared.cfg.timing.clone();
    call.hooks.emit(
        "call.initiated",
        json!({"direction": "incoming", "state": "parked", "caller_id_name": call.info.from,
               "start_time": call.info.start_time,
               "connection_codecs": "G722,PCMU,PCMA,G729,OPUS", "offered_codecs": "PCMU,PCMA,G722"}),
    );
    let arrived = Instant::now();
    let timeout_at = arrived + t.first_command_timeout;
    let gives_up_at = match &caller {
        CallerScript::HangsUpBeforeAnswer { after } => Some(arrived + *after),
        CallerScript::Talks { .. } => None,
    };
    let first_deadline = gives_up_at.map_or(timeout_at, |g| g.min(timeout_at));
    let answer = loop {
        tokio::select! {
            _ = sleep_until(first_deadline.into()) => {
                let ending = if gives_up_at.is_some_and(|g| g <= timeout_at) {
                    Ending { cause: "originator_cancel", source: "caller", sip: "unspecified" }
                } else {
                    Ending { cause: "timeout", source: "callee", sip: "unspecified" }
                };
                return call.finish(ending).await;
            }
            cmd = cmds.recv() => match cmd {
                Some(CallCmd::Answer(p)) => break p,
                Some(CallCmd::Hangup) => {
                    let end = Ending { cause: "normal_clearing", source: "callee", sip: "unspecified" };
                    return call.finish(end).await;
                }
                Some(_) => {}
                None => return,
            },
        }
    };
    let (audio, hang_up_after) = match caller {
        CallerScript::Talks {
            speech,
            hang_up_after,
        } => (speech, hang_up_after),
        // Answered before giving up: stays on the line, silent.
        CallerScript::HangsUpBeforeAnswer { .. } => (Vec::new(), None),
    };
    let answered_at = call.mark_answered();
    let now_ms = call.shared.recorder.now_ms();
    let ccid = call.info.call_control_id.clone();
    call.shared.recorder.with(|r| {
        if let Some(c) = r.inbound.iter_mut().find(|c| c.call_control_id == ccid) {
            c.answered_at_ms = Some(now_ms);
        }
    });
    let time_limit = t
        .time_limit
        .unwrap_or(Duration::from_secs(call.info.dial.time_limit_secs));
    let answered = Answered {
        audio: Arc::new(audio),
        answered_at,
        amd_mode: "disabled".to_owned(),
        who: Answerer {
            verdict: AmdVerdict::HumanResidence,
            beep_at: None,
        },
        hang_up_after,
        stream: answer.stream,
        time_limit,
    };
    call.answered(answered, cmds).await
}
