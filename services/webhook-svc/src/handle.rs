//! What each verified, first-seen event does. Runs after the 2xx has been sent.

use crate::events::{AmdResult, CallEvent, EventData, GreetingEnd};
use crate::WebhookState;
use callway_core::call_context::{
    random_id, CallContext, CallRef, ContextError, TimelineEvent, CONTEXT_TTL,
};
use callway_core::lead::CallbackStatus;
use callway_core::telnyx::TelnyxClient;
use tracing::Instrument;

/// Said to an answering machine before hanging up (`CALLWAY_VOICEMAIL_ACTION=message`).
pub const VOICEMAIL_MESSAGE: &str = "Bonjour, ici l'agent IA de Callway. Nous vous rappelions suite à votre demande sur notre site. \
Vous pouvez y revenir quand vous le souhaitez. Bonne journée.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoicemailAction {
    Message,
    HangUp,
}

/// Who answered, as AMD told us (the `amd` call flag: `human`, `machine`, `fax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// No verdict, `silence` or `not_sure`.
    Unknown,
    Human,
    Machine,
    Fax,
}

impl Answerer {
    fn from_flag(flag: Option<&str>) -> Self {
        match flag {
            Some("human") => Answerer::Human,
            Some("machine") => Answerer::Machine,
            Some("fax") => Answerer::Fax,
            _ => Answerer::Unknown,
        }
    }
}

fn is_terminal(s: CallbackStatus) -> bool {
    matches!(
        s,
        CallbackStatus::Completed
            | CallbackStatus::Voicemail
            | CallbackStatus::NoAnswer
            | CallbackStatus::Busy
            | CallbackStatus::Failed
    )
}

/// The lead outcome for a hang-up, given what we learnt during the call. A fax line is
/// `failed`: nobody can be reached nor a message left there, and calling again changes nothing.
pub fn outcome(
    cause: &str,
    answered: bool,
    answerer: Answerer,
    stream_failed: bool,
) -> CallbackStatus {
    match cause {
        _ if answerer == Answerer::Machine => CallbackStatus::Voicemail,
        _ if answerer == Answerer::Fax => CallbackStatus::Failed,
        _ if stream_failed => CallbackStatus::Failed,
        "user_busy" => CallbackStatus::Busy,
        "timeout" | "no_answer" | "call_rejected" | "originator_cancel" if !answered => {
            CallbackStatus::NoAnswer
        }
        "normal_clearing" | "time_limit" | "originator_cancel" if answered => {
            CallbackStatus::Completed
        }
        "normal_clearing" => CallbackStatus::NoAnswer,
        _ => CallbackStatus::Failed,
    }
}

/// An event that concerns one of our live calls, with its context: what [`handle`] acts on.
pub struct Prepared {
    event: CallEvent,
    call_ref: CallRef,
    ctx: CallContext,
}

/// Decides, before the 2xx, whether the event is ours and loads its call context. `Ok(None)`:
/// nothing to do (unknown event, not our call, call already ended). `Err`: the context store is
/// down — the caller answers 5xx so that Telnyx sends the event again.
pub async fn prepare(
    state: &WebhookState,
    data: &EventData,
) -> Result<Option<Prepared>, ContextError> {
    let event = CallEvent::from(data);
    if event == CallEvent::Other {
        tracing::debug!("event ignored");
        return Ok(None);
    }
    let Some(call_ref) = data
        .payload
        .client_state
        .as_deref()
        .and_then(CallRef::from_client_state)
    else {
        tracing::warn!("event without our client_state: ignored");
        return Ok(None);
    };
    tracing::Span::current().record("call_ref", call_ref.as_str());
    let Some(ctx) = state.contexts.load(&call_ref).await? else {
        tracing::info!("no context for this call (already ended or unknown): ignored");
        return Ok(None);
    };
    Ok(Some(Prepared {
        event,
        call_ref,
        ctx,
    }))
}

/// Acts on a prepared event; runs after the 2xx has been sent.
pub async fn handle(state: &WebhookState, prepared: Prepared, data: EventData) {
    let Prepared {
        event,
        call_ref,
        ctx,
    } = prepared;
    // The webhook's own HTTP request has no trace header (Telnyx sends none); the work it causes
    // belongs to the journey that asked for the call, whose trace context rides in the context.
    let span = tracing::info_span!(
        "telnyx.webhook",
        event = %data.event_type,
        call_ref = call_ref.as_str()
    );
    callway_core::telemetry::set_remote_parent(&span, ctx.traceparent.as_deref());
    act(state, &ctx, &call_ref, event, &data)
        .instrument(span)
        .await
}

async fn act(
    state: &WebhookState,
    ctx: &CallContext,
    call_ref: &CallRef,
    event: CallEvent,
    data: &EventData,
) {
    let call_ref = call_ref.clone();
    let call_id = data
        .payload
        .call_control_id
        .clone()
        .or(ctx.call_control_id.clone());
    let c = &state.contexts;
    let call = Call {
        state,
        call_ref: &call_ref,
        id: call_id.as_deref(),
    };
    match event {
        CallEvent::Initiated => {
            push_timeline(c, &call_ref, "ringing", None).await;
            set_status(state, &ctx.lead_id, CallbackStatus::Ringing).await
        }
        CallEvent::Answered => {
            push_timeline(c, &call_ref, "answered", None).await;
            let _ = c.set_flag(&call_ref, "answered", "1").await;
            set_status(state, &ctx.lead_id, CallbackStatus::Answered).await;
        }
        CallEvent::Amd(AmdResult::Human) => {
            let _ = c.set_flag(&call_ref, "amd", "human").await;
        }
        CallEvent::Amd(AmdResult::Machine) => {
            call.machine_recognised().await;
            // Hanging up needs no beep; a message waits for the greeting to end: Telnyx sends
            // `greeting.ended` after a `machine` verdict, with `beep_detected` or, once its
            // beep wait times out, `no_beep_detected` (AMD guide). Said before the beep, the
            // message would go unrecorded.
            if state.voicemail == VoicemailAction::HangUp {
                call.handle_voicemail().await;
            }
        }
        CallEvent::Greeting(GreetingEnd::Beep | GreetingEnd::NoBeep) => {
            // Only machines have greetings. With the beep before the verdict this is the only
            // AMD webhook: the agent may already be talking to the recorder.
            call.machine_recognised().await;
            call.handle_voicemail().await;
        }
        CallEvent::Greeting(GreetingEnd::Unsure) => {
            if call.answerer().await == Answerer::Machine {
                call.handle_voicemail().await;
            }
        }
        CallEvent::Amd(AmdResult::Fax) => {
            // Nobody to talk to and no message to leave: hang up now (outcome `failed`).
            tracing::info!("fax machine: hanging up");
            let _ = c.set_flag(&call_ref, "amd", "fax").await;
            call.hang_up("hangup on a fax line failed").await;
        }
        CallEvent::Amd(AmdResult::Silence | AmdResult::NotSure) => {
            // Someone picked up and says nothing yet, or AMD could not tell: the agent keeps
            // the line (Telnyx advises treating `not_sure` as human). A machine among them
            // still sends `greeting.ended`, handled above.
            tracing::info!("AMD undecided: the agent keeps the line");
        }
        CallEvent::SpeakEnded { completed } => {
            if call.answerer().await == Answerer::Machine {
                if !completed {
                    tracing::warn!(
                        status = data.payload.status.as_deref().unwrap_or("unknown"),
                        "voicemail message not completed"
                    );
                }
                call.hang_up("hangup after voicemail message failed").await;
            }
        }
        CallEvent::StreamingStarted => tracing::info!("media stream connected"),
        CallEvent::StreamingFailed => {
            tracing::error!(
                reason = data.payload.failure_reason.as_deref().unwrap_or("unknown"),
                "media stream failed"
            );
            let _ = c.set_flag(&call_ref, "stream_failed", "1").await;
            if let (Some(id), Some(telnyx)) = (call_id.as_deref(), state.telnyx.as_ref()) {
                let _ = telnyx.hangup(id, &random_id("cmd_")).await;
            }
        }
        CallEvent::Hangup { cause } => {
            let answered = c.flag(&call_ref, "answered").await.ok().flatten().is_some();
            let answerer = call.answerer().await;
            let stream_failed = c
                .flag(&call_ref, "stream_failed")
                .await
                .ok()
                .flatten()
                .is_some();
            let status = outcome(&cause, answered, answerer, stream_failed);
            tracing::info!(cause = %cause, outcome = status.as_str(), "call ended");
            push_timeline(c, &call_ref, "ended", Some(status.as_str().to_owned())).await;
            set_status(state, &ctx.lead_id, status).await;
            if let Err(e) = c.remove(&call_ref).await {
                tracing::warn!(error = %e, "context not removed (it expires by itself)");
            }
        }
        CallEvent::Other => {}
    }
}

/// One call's Call Control side, as the webhook handlers drive it.
struct Call<'a> {
    state: &'a WebhookState,
    call_ref: &'a CallRef,
    id: Option<&'a str>,
}

impl Call<'_> {
    fn telnyx(&self) -> Option<(&str, &TelnyxClient)> {
        Some((self.id?, self.state.telnyx.as_ref()?))
    }

    async fn answerer(&self) -> Answerer {
        let flag = self.state.contexts.flag(self.call_ref, "amd").await;
        Answerer::from_flag(flag.ok().flatten().as_deref())
    }

    /// An answering machine is on the line: recorded once (flag for the bridge and the
    /// outcome, timeline), and the agent is cut by stopping the media stream — the bridge gets
    /// `stop` and closes its OpenAI session — whether or not its own AMD watch is still running.
    async fn machine_recognised(&self) {
        if self.answerer().await == Answerer::Machine {
            return;
        }
        let c = &self.state.contexts;
        let _ = c.set_flag(self.call_ref, "amd", "machine").await;
        push_timeline(c, self.call_ref, "voicemail", None).await;
        if let Some((id, telnyx)) = self.telnyx() {
            if let Err(e) = telnyx.streaming_stop(id, &random_id("cmd_")).await {
                tracing::info!(error = %e, "media stream not stopped (none, or already gone)");
            }
        }
    }

    /// `CALLWAY_VOICEMAIL_ACTION`, at most once per call: speak the message (then hang up on
    /// `call.speak.ended`), or hang up. A `speak` Telnyx refuses or cannot take ends the call
    /// at once instead of leaving it on the recorder until the time limit.
    async fn handle_voicemail(&self) {
        let key = format!("callway:voicemail:{}", self.call_ref.as_str());
        match self.state.contexts.claim(&key, CONTEXT_TTL).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                // Unknown whether it was handled: hanging up is safe to repeat, speaking is not.
                tracing::warn!(error = %e, "voicemail claim unavailable: hanging up");
                return self.hang_up("voicemail hangup failed").await;
            }
        }
        let Some((id, telnyx)) = self.telnyx() else {
            return;
        };
        if self.state.voicemail == VoicemailAction::HangUp {
            return self.hang_up("voicemail hangup failed").await;
        }
        match telnyx
            .speak(id, VOICEMAIL_MESSAGE, &random_id("cmd_"))
            .await
        {
            Ok(()) => {}
            Err(e) if e.is_call_ended() => {}
            Err(e) => {
                tracing::warn!(error = %e, "voicemail message refused: hanging up");
                self.hang_up("hangup after a refused voicemail message failed")
                    .await;
            }
        }
    }

    async fn hang_up(&self, failure: &'static str) {
        let Some((id, telnyx)) = self.telnyx() else {
            return;
        };
        if let Err(e) = telnyx.hangup(id, &random_id("cmd_")).await {
            if !e.is_call_ended() {
                tracing::warn!(error = %e, "{failure}");
            }
        }
    }
}

async fn push_timeline(
    c: &callway_core::call_context::ContextStore,
    call_ref: &CallRef,
    kind: &str,
    text: Option<String>,
) {
    if let Err(e) = c
        .push_event(call_ref, &TimelineEvent::now(kind, text))
        .await
    {
        tracing::warn!(error = %e, "timeline not updated");
    }
}

async fn set_status(
    state: &WebhookState,
    lead: &callway_core::lead::LeadId,
    status: CallbackStatus,
) {
    // Webhooks arrive out of order: never move a finished callback back to an earlier state.
    match state.leads.get(*lead).await {
        Ok(Some(l)) if is_terminal(l.callback_status) => return,
        Ok(Some(l))
            if status == CallbackStatus::Ringing
                && l.callback_status == CallbackStatus::Answered =>
        {
            return
        }
        Ok(Some(_)) => {}
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "lead store unavailable");
            return;
        }
    }
    if let Err(e) = state.leads.update_callback(*lead, status, None).await {
        tracing::error!(error = %e, "lead outcome not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hangup_causes_map_to_outcomes() {
        use Answerer::*;
        let cases = [
            (
                "normal_clearing",
                true,
                Unknown,
                false,
                CallbackStatus::Completed,
            ),
            (
                "normal_clearing",
                true,
                Human,
                false,
                CallbackStatus::Completed,
            ),
            (
                "normal_clearing",
                true,
                Machine,
                false,
                CallbackStatus::Voicemail,
            ),
            ("normal_clearing", true, Fax, false, CallbackStatus::Failed),
            (
                "normal_clearing",
                true,
                Unknown,
                true,
                CallbackStatus::Failed,
            ),
            ("timeout", false, Unknown, false, CallbackStatus::NoAnswer),
            ("user_busy", false, Unknown, false, CallbackStatus::Busy),
            ("not_found", false, Unknown, false, CallbackStatus::Failed),
            ("time_limit", true, Human, false, CallbackStatus::Completed),
            (
                "time_limit",
                true,
                Machine,
                false,
                CallbackStatus::Voicemail,
            ),
        ];
        for (cause, answered, who, stream_failed, want) in cases {
            assert_eq!(
                outcome(cause, answered, who, stream_failed),
                want,
                "{cause} {answered} {who:?} {stream_failed}"
            );
        }
    }
}
