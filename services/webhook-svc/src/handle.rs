//! What each verified, first-seen event does. Runs after the 2xx has been sent.

use crate::events::{CallEvent, EventData};
use crate::WebhookState;
use callway_core::call_context::{random_id, CallContext, CallRef, ContextError, TimelineEvent};
use callway_core::lead::CallbackStatus;
use tracing::Instrument;

/// Said to an answering machine before hanging up (`CALLWAY_VOICEMAIL_ACTION=message`).
pub const VOICEMAIL_MESSAGE: &str = "Bonjour, ici l'agent IA de Callway. Nous vous rappelions suite à votre demande sur notre site. \
Vous pouvez y revenir quand vous le souhaitez. Bonne journée.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoicemailAction {
    Message,
    HangUp,
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

/// The lead outcome for a hang-up, given what we learnt during the call.
pub fn outcome(cause: &str, answered: bool, machine: bool, stream_failed: bool) -> CallbackStatus {
    match cause {
        _ if machine => CallbackStatus::Voicemail,
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
        CallEvent::Human | CallEvent::AmdUnsure => {
            let _ = c.set_flag(&call_ref, "amd", "human").await;
        }
        CallEvent::Machine => {
            push_timeline(c, &call_ref, "voicemail", None).await;
            let _ = c.set_flag(&call_ref, "amd", "machine").await;
            if let (Some(id), Some(telnyx)) = (call_id.as_deref(), state.telnyx.as_ref()) {
                let done = match state.voicemail {
                    VoicemailAction::Message => {
                        telnyx
                            .speak(id, VOICEMAIL_MESSAGE, &random_id("cmd_"))
                            .await
                    }
                    VoicemailAction::HangUp => telnyx.hangup(id, &random_id("cmd_")).await,
                };
                if let Err(e) = done {
                    tracing::warn!(error = %e, "voicemail handling failed");
                }
            }
        }
        CallEvent::SpeakEnded => {
            let machine =
                c.flag(&call_ref, "amd").await.ok().flatten().as_deref() == Some("machine");
            if let (true, Some(id), Some(telnyx)) =
                (machine, call_id.as_deref(), state.telnyx.as_ref())
            {
                if let Err(e) = telnyx.hangup(id, &random_id("cmd_")).await {
                    if !e.is_call_ended() {
                        tracing::warn!(error = %e, "hangup after voicemail message failed");
                    }
                }
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
            let machine =
                c.flag(&call_ref, "amd").await.ok().flatten().as_deref() == Some("machine");
            let stream_failed = c
                .flag(&call_ref, "stream_failed")
                .await
                .ok()
                .flatten()
                .is_some();
            let status = outcome(&cause, answered, machine, stream_failed);
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
        assert_eq!(
            outcome("normal_clearing", true, false, false),
            CallbackStatus::Completed
        );
        assert_eq!(
            outcome("normal_clearing", true, true, false),
            CallbackStatus::Voicemail
        );
        assert_eq!(
            outcome("normal_clearing", true, false, true),
            CallbackStatus::Failed
        );
        assert_eq!(
            outcome("timeout", false, false, false),
            CallbackStatus::NoAnswer
        );
        assert_eq!(
            outcome("user_busy", false, false, false),
            CallbackStatus::Busy
        );
        assert_eq!(
            outcome("not_found", false, false, false),
            CallbackStatus::Failed
        );
        assert_eq!(
            outcome("time_limit", true, false, false),
            CallbackStatus::Completed
        );
    }
}
