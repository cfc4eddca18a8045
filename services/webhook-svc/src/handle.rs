//! What each verified event does, before the delivery is answered.

use crate::error::WebhookError;
use crate::events::{AmdResult, CallEvent, EventData, GreetingEnd};
use crate::WebhookState;
use callway_core::call_context::{
    key_hash, keys, phone_transcript, AmdVerdict, CallContext, CallFlag, CallKind, CallRef,
    Claimed, ContextError, ContextStore, DialState, TimelineEvent, TimelineKind, CONTEXT_TTL,
};
use callway_core::call_record::CallUpdate;
use callway_core::lead::{CallbackStatus, LeadId};
use callway_core::telnyx::TelnyxClient;
use tracing::Instrument;

/// The voicemail message: with our number and the promise of another attempt when one will
/// follow (`CALLWAY_MAX_CALL_ATTEMPTS`), the plain message otherwise.
pub fn voicemail_message(will_retry: bool, our_number: Option<&str>) -> String {
    match (will_retry, our_number.and_then(spoken_number)) {
        (true, Some(n)) => format!(
            "Bonjour, ici l'agent IA de Callway. Nous vous rappelions suite à votre demande sur notre site. \
Nous essaierons de vous rappeler un peu plus tard. Vous pouvez aussi nous rappeler au {n}. Bonne journée."
        ),
        (true, None) => "Bonjour, ici l'agent IA de Callway. Nous vous rappelions suite à votre demande sur notre site. \
Nous essaierons de vous rappeler un peu plus tard. Bonne journée."
            .to_owned(),
        (false, _) => VOICEMAIL_MESSAGE.to_owned(),
    }
}

/// A French number as a voice reads it: `+33 1 23 45 67 89` → `01 23 45 67 89`.
fn spoken_number(e164: &str) -> Option<String> {
    let national = e164.strip_prefix("+33").map(|r| format!("0{r}"))?;
    if national.len() != 10 || !national.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pairs: Vec<&str> = (0..5).map(|i| &national[2 * i..2 * i + 2]).collect();
    Some(pairs.join(" "))
}

/// Said to an answering machine before hanging up (`CALLWAY_VOICEMAIL_ACTION=message`).
pub const VOICEMAIL_MESSAGE: &str = "Bonjour, ici l'agent IA de Callway. Nous vous rappelions suite à votre demande sur notre site. \
Vous pouvez y revenir quand vous le souhaitez. Bonne journée.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoicemailAction {
    Message,
    HangUp,
}

/// Who answered, as AMD told us (the `amd` call flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answerer {
    /// No verdict, `silence` or `not_sure`.
    Unknown,
    Human,
    Machine,
    Fax,
}

impl Answerer {
    fn from_verdict(verdict: Option<AmdVerdict>) -> Self {
        match verdict {
            Some(AmdVerdict::Human) => Answerer::Human,
            Some(AmdVerdict::Machine) => Answerer::Machine,
            Some(AmdVerdict::Fax) => Answerer::Fax,
            None => Answerer::Unknown,
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

/// Handles one verified event and says what became of it (`accepted`, `ignored`). An `Err` means
/// some effect is not stored: the delivery is answered non-2xx and Telnyx sends it again, so
/// every effect here is safe to repeat (flags and statuses are set, not toggled; Telnyx
/// commands carry a `command_id` derived from the event, which Telnyx de-duplicates).
pub async fn handle(state: &WebhookState, data: &EventData) -> Result<&'static str, WebhookError> {
    let event = CallEvent::from(data);
    if event == CallEvent::Other {
        tracing::debug!("event ignored");
        return Ok("ignored");
    }
    let client_state = data.payload.client_state.as_deref().unwrap_or("");
    if event == CallEvent::Initiated
        && data.payload.direction.as_deref() == Some("incoming")
        && client_state.is_empty()
    {
        return crate::inbound::answer(state, data).await;
    }
    let Some(call_ref) = CallRef::from_client_state(client_state) else {
        tracing::warn!("event without our client_state: ignored");
        return Ok("ignored");
    };
    tracing::Span::current().record("call_ref", call_ref.as_str());
    if CallRef::is_transfer_leg(client_state) {
        return crate::transfer::handle(state, &call_ref, &event, data).await;
    }
    let Some(ctx) = state.contexts.load(&call_ref).await? else {
        return without_context(state, &call_ref, client_state, &event, &data.payload).await;
    };
    // The webhook's own HTTP request has no trace header (Telnyx sends none); the work it causes
    // belongs to the journey that asked for the call, whose trace context rides in the context.
    let span = tracing::info_span!(
        "telnyx.webhook",
        event = %data.event_type,
        call_ref = call_ref.as_str()
    );
    callway_core::telemetry::set_remote_parent(&span, ctx.traceparent.as_deref());
    act(state, &ctx, &call_ref, event, data)
        .instrument(span)
        .await
        .map(|()| "accepted")
}

/// The store lost the call's context (expired, or Redis restarted empty). The call itself can
/// still end properly: its hang-up records the outcome on the lead named in `client_state`,
/// using what PostgreSQL knows (whether it was answered). Everything else is dropped: the
/// bridge refuses the stream politely without a context.
async fn without_context(
    state: &WebhookState,
    call_ref: &CallRef,
    client_state: &str,
    event: &CallEvent,
    payload: &crate::events::Payload,
) -> Result<&'static str, WebhookError> {
    let (CallEvent::Hangup { cause }, Some(lead_id)) =
        (event, CallRef::lead_from_client_state(client_state))
    else {
        tracing::info!("no context for this call (already ended or unknown): ignored");
        return Ok("ignored");
    };
    let Some(lead) = state.leads.get(lead_id).await? else {
        return Ok("ignored");
    };
    if is_terminal(lead.callback_status) {
        return Ok("ignored");
    }
    let answered = lead.callback_status == CallbackStatus::Answered;
    let status = outcome(cause, answered, Answerer::Unknown, false);
    tracing::warn!(
        call_ref = call_ref.as_str(),
        outcome = status.as_str(),
        "call ended without its context: outcome recorded from the lead"
    );
    record(state, call_ref, ended(cause, status, payload)).await?;
    state.leads.update_callback(lead_id, status, None).await?;
    tell_business(state, &lead_id, call_ref).await?;
    schedule_retry(state, lead_id, lead.callback_attempts.max(1), status, cause).await?;
    callway_core::metrics::get().callback_ended(status);
    Ok("accepted")
}

async fn act(
    state: &WebhookState,
    ctx: &CallContext,
    call_ref: &CallRef,
    event: CallEvent,
    data: &EventData,
) -> Result<(), WebhookError> {
    let call_id = data
        .payload
        .call_control_id
        .clone()
        .or(ctx.call_control_id.clone());
    let c = &state.contexts;
    let call = Call {
        state,
        call_ref,
        id: call_id.as_deref(),
        event_id: &data.id,
        attempt: ctx.attempt,
    };
    match event {
        CallEvent::Initiated => {
            record(
                state,
                call_ref,
                CallUpdate {
                    telnyx_call_control_id: data.payload.call_control_id.clone(),
                    telnyx_call_session_id: data.payload.call_session_id.clone(),
                    ..Default::default()
                },
            )
            .await?;
            // Settles a dial whose answer was lost (timeout, 5xx): Telnyx placed it.
            c.raise(call_ref, CallFlag::Initiated).await?;
            c.set_dial_state(call_ref, DialState::Placed).await?;
            set_status(state, &ctx.lead_id, CallbackStatus::Ringing).await?;
            push_timeline(c, call_ref, TimelineKind::Ringing, None).await?;
        }
        CallEvent::Answered if ctx.kind != CallKind::Callback => {
            record(
                state,
                call_ref,
                CallUpdate {
                    answered_at: Some(chrono::Utc::now()),
                    ..Default::default()
                },
            )
            .await?;
            c.raise(call_ref, CallFlag::Answered).await?;
            if let Some(id) = call_id.as_deref() {
                crate::inbound::start_stream(state, ctx, id, &data.id).await?;
            }
            push_timeline(c, call_ref, TimelineKind::Answered, None).await?;
        }
        CallEvent::Answered => {
            record(
                state,
                call_ref,
                CallUpdate {
                    answered_at: Some(chrono::Utc::now()),
                    ..Default::default()
                },
            )
            .await?;
            c.raise(call_ref, CallFlag::Answered).await?;
            set_status(state, &ctx.lead_id, CallbackStatus::Answered).await?;
            push_timeline(c, call_ref, TimelineKind::Answered, None).await?;
            callway_core::metrics::get().callbacks_answered.add(1, &[]);
        }
        CallEvent::Amd(AmdResult::Human) => {
            record_amd(state, call_ref, AmdVerdict::Human).await?;
            c.set_amd(call_ref, AmdVerdict::Human).await?
        }
        CallEvent::Amd(AmdResult::Machine) => {
            call.machine_recognised().await?;
            // Hanging up needs no beep; a message waits for the greeting to end: Telnyx sends
            // `greeting.ended` after a `machine` verdict, with `beep_detected` or, once its
            // beep wait times out, `no_beep_detected` (AMD guide). Said before the beep, the
            // message would go unrecorded.
            if state.voicemail == VoicemailAction::HangUp {
                call.handle_voicemail().await?;
            }
        }
        CallEvent::Greeting(GreetingEnd::Beep | GreetingEnd::NoBeep) => {
            // Only machines have greetings. With the beep before the verdict this is the only
            // AMD webhook: the agent may already be talking to the recorder.
            call.machine_recognised().await?;
            call.handle_voicemail().await?;
        }
        CallEvent::Greeting(GreetingEnd::Unsure) => {
            if c.amd(call_ref).await? == Some(AmdVerdict::Machine) {
                call.handle_voicemail().await?;
            }
        }
        CallEvent::Amd(AmdResult::Fax) => {
            // Nobody to talk to and no message to leave: hang up now (outcome `failed`).
            tracing::info!("fax machine: hanging up");
            record_amd(state, call_ref, AmdVerdict::Fax).await?;
            c.set_amd(call_ref, AmdVerdict::Fax).await?;
            call.hang_up().await?;
        }
        CallEvent::Amd(AmdResult::Silence | AmdResult::NotSure) => {
            // Someone picked up and says nothing yet, or AMD could not tell: the agent keeps
            // the line (Telnyx advises treating `not_sure` as human). A machine among them
            // still sends `greeting.ended`, handled above.
            tracing::info!("AMD undecided: the agent keeps the line");
        }
        CallEvent::SpeakEnded { completed } => {
            if c.amd(call_ref).await? == Some(AmdVerdict::Machine) {
                if !completed {
                    tracing::warn!(
                        status = data.payload.status.as_deref().unwrap_or("unknown"),
                        "voicemail message not completed"
                    );
                }
                call.hang_up().await?;
            }
        }
        CallEvent::StreamingStarted => tracing::info!("media stream connected"),
        CallEvent::StreamingFailed => {
            tracing::error!(
                reason = data.payload.failure_reason.as_deref().unwrap_or("unknown"),
                "media stream failed"
            );
            c.raise(call_ref, CallFlag::StreamFailed).await?;
            call.hang_up().await?;
        }
        CallEvent::Hangup { cause } => {
            let answered = c.is_raised(call_ref, CallFlag::Answered).await?;
            let answerer = Answerer::from_verdict(c.amd(call_ref).await?);
            let stream_failed = c.is_raised(call_ref, CallFlag::StreamFailed).await?;
            let status = outcome(&cause, answered, answerer, stream_failed);
            tracing::info!(cause = %cause, outcome = status.as_str(), "call ended");
            // What the business keeps: both sides' lines (the bridge wrote them to the
            // timeline as they were said) and the agent's qualification.
            let transcript = phone_transcript(&c.timeline(call_ref).await?);
            let mut update = ended(&cause, status, &data.payload);
            update.transcript = Some(transcript);
            update.qualification = c.qualification(call_ref).await?;
            record(state, call_ref, update).await?;
            // An incoming call changes nothing of the lead's callback.
            if ctx.kind == CallKind::Callback {
                set_status(state, &ctx.lead_id, status).await?;
                schedule_retry(state, ctx.lead_id, ctx.attempt, status, &cause).await?;
            }
            if ctx.kind != CallKind::InboundUnknown {
                tell_business(state, &ctx.lead_id, call_ref).await?;
            }
            push_timeline(
                c,
                call_ref,
                TimelineKind::Ended,
                Some(status.as_str().to_owned()),
            )
            .await?;
            callway_core::metrics::get().callback_ended(status);
            if let Err(e) = c.remove(call_ref).await {
                tracing::warn!(error = %e, "context not removed (it expires by itself)");
            }
        }
        CallEvent::Other => {}
    }
    Ok(())
}

/// One call's Call Control side, as the webhook handlers drive it.
struct Call<'a> {
    state: &'a WebhookState,
    call_ref: &'a CallRef,
    id: Option<&'a str>,
    /// Telnyx's id of the event being handled: the commands it causes derive their
    /// `command_id` from it, so a redelivered event repeats them without effect.
    event_id: &'a str,
    /// Which attempt of the callback this call is.
    attempt: u8,
}

impl Call<'_> {
    fn telnyx(&self) -> Option<(&str, &TelnyxClient)> {
        Some((self.id?, self.state.telnyx.as_ref()?))
    }

    fn command_id(&self, action: &str) -> String {
        format!("{action}-{}", key_hash(self.event_id))
    }

    /// An answering machine is on the line: recorded once (flag for the bridge and the
    /// outcome, timeline), and the agent is cut by stopping the media stream — the bridge gets
    /// `stop` and closes its OpenAI session — whether or not its own AMD watch is still running.
    async fn machine_recognised(&self) -> Result<(), WebhookError> {
        let c = &self.state.contexts;
        if c.amd(self.call_ref).await? == Some(AmdVerdict::Machine) {
            return Ok(());
        }
        record_amd(self.state, self.call_ref, AmdVerdict::Machine).await?;
        c.set_amd(self.call_ref, AmdVerdict::Machine).await?;
        push_timeline(c, self.call_ref, TimelineKind::Voicemail, None).await?;
        if let Some((id, telnyx)) = self.telnyx() {
            if let Err(e) = telnyx
                .streaming_stop(id, &self.command_id("streaming_stop"))
                .await
            {
                tracing::info!(error = %e, "media stream not stopped (none, or already gone)");
            }
        }
        Ok(())
    }

    /// `CALLWAY_VOICEMAIL_ACTION`, at most once per call: speak the message (then hang up on
    /// `call.speak.ended`), or hang up. The claim's holder is the event, so a redelivery of
    /// the same event carries on where a failed delivery stopped, and a second event (a
    /// verdict and a greeting's end) does nothing. A `speak` Telnyx refuses ends the call at
    /// once instead of leaving it on the recorder until the time limit.
    async fn handle_voicemail(&self) -> Result<(), WebhookError> {
        let key = keys::voicemail(self.call_ref);
        let claimed = self
            .state
            .contexts
            .acquire(&key, self.event_id, CONTEXT_TTL)
            .await?;
        if claimed == Claimed::Other {
            return Ok(());
        }
        let Some((id, telnyx)) = self.telnyx() else {
            return Ok(());
        };
        if self.state.voicemail == VoicemailAction::HangUp {
            return self.hang_up().await;
        }
        match telnyx
            .speak(id, &self.voicemail_text(), &self.command_id("speak"))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_call_ended() => Ok(()),
            // Refused or unavailable: the message cannot be counted on, and a call left on the
            // recorder would run to its time limit. Hanging up is safe to repeat (a redelivery
            // does it again with the same command_id if this one fails too).
            Err(e) => {
                tracing::warn!(error = %e, "voicemail message not accepted: hanging up");
                self.hang_up().await
            }
        }
    }

    fn voicemail_text(&self) -> String {
        let s = self.state;
        voicemail_message(
            s.retries.is_some() && s.retry_policy.will_retry(self.attempt),
            s.callback_number.as_deref(),
        )
    }

    async fn hang_up(&self) -> Result<(), WebhookError> {
        let Some((id, telnyx)) = self.telnyx() else {
            return Ok(());
        };
        match telnyx.hangup(id, &self.command_id("hangup")).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_call_ended() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A missed call (no answer, busy, voicemail) is tried again per the retry policy: one job in
/// the durable retry queue, due at the next attempt's time inside calling hours.
async fn schedule_retry(
    state: &WebhookState,
    lead_id: LeadId,
    done: u8,
    status: CallbackStatus,
    cause: &str,
) -> Result<(), WebhookError> {
    let Some(queue) = &state.retries else {
        return Ok(());
    };
    let now = chrono::Utc::now();
    let Some(at) = state.retry_policy.next_attempt(done, status, cause, now) else {
        return Ok(());
    };
    let job = callway_core::outbound::RetryJob {
        lead_id,
        attempt: done + 1,
    };
    let body = serde_json::to_string(&job).unwrap_or_default();
    if queue
        .enqueue_at(
            &job.id(),
            body,
            now.timestamp_millis(),
            at.timestamp_millis(),
        )
        .await?
    {
        tracing::info!(attempt = job.attempt, due = %at, "missed call: another attempt scheduled");
    }
    Ok(())
}

/// `call.ended` to the business, with the lead and the finished call record.
async fn tell_business(
    state: &WebhookState,
    lead_id: &LeadId,
    call_ref: &CallRef,
) -> Result<(), WebhookError> {
    let Some(outbox) = &state.business else {
        return Ok(());
    };
    let Some(lead) = state.leads.get(*lead_id).await? else {
        return Ok(());
    };
    let records = state.leads.call_records(*lead_id).await?;
    let Some(record) = records.iter().find(|r| r.call_ref == call_ref.as_str()) else {
        return Ok(());
    };
    let event = callway_core::outbound::call_ended(&lead, record, chrono::Utc::now());
    callway_core::outbound::enqueue(outbox, event).await?;
    Ok(())
}

/// Sets what an event learnt on the call record (written at the dial by tools-svc).
async fn record(
    state: &WebhookState,
    call_ref: &CallRef,
    update: CallUpdate,
) -> Result<(), WebhookError> {
    if !state.leads.update_call(call_ref.as_str(), update).await? {
        tracing::warn!("no call record for this call: not updated");
    }
    Ok(())
}

async fn record_amd(
    state: &WebhookState,
    call_ref: &CallRef,
    verdict: AmdVerdict,
) -> Result<(), WebhookError> {
    let update = CallUpdate {
        amd_result: Some(verdict.as_str().to_owned()),
        ..Default::default()
    };
    record(state, call_ref, update).await
}

/// The hang-up's facts: when, why, how long (Telnyx's `start_time`/`end_time`).
fn ended(cause: &str, status: CallbackStatus, payload: &crate::events::Payload) -> CallUpdate {
    let time = |t: &Option<String>| {
        t.as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let (start, end) = (time(&payload.start_time), time(&payload.end_time));
    let duration_secs = match (start, end) {
        (Some(s), Some(e)) if e >= s => Some((e - s).num_seconds().min(86_400)),
        _ => None,
    };
    CallUpdate {
        ended_at: Some(end.unwrap_or_else(chrono::Utc::now)),
        outcome: Some(status),
        hangup_cause: Some(cause.chars().take(64).collect()),
        duration_secs,
        ..Default::default()
    }
}

async fn push_timeline(
    c: &ContextStore,
    call_ref: &CallRef,
    kind: TimelineKind,
    text: Option<String>,
) -> Result<(), ContextError> {
    c.push_event(call_ref, &TimelineEvent::now(kind, text))
        .await
}

async fn set_status(
    state: &WebhookState,
    lead: &LeadId,
    status: CallbackStatus,
) -> Result<(), WebhookError> {
    // Webhooks arrive out of order: never move a finished callback back to an earlier state.
    match state.leads.get(*lead).await? {
        Some(l) if is_terminal(l.callback_status) => return Ok(()),
        Some(l)
            if status == CallbackStatus::Ringing
                && l.callback_status == CallbackStatus::Answered =>
        {
            return Ok(())
        }
        Some(_) => {}
        None => return Ok(()),
    }
    state.leads.update_callback(*lead, status, None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_voicemail_message_promises_another_attempt_and_gives_our_number_only_when_one_follows() {
        let m = voicemail_message(true, Some("+33123456789"));
        assert!(m.contains("Nous essaierons de vous rappeler"));
        assert!(m.contains("01 23 45 67 89"), "{m}");
        assert_eq!(
            voicemail_message(false, Some("+33123456789")),
            VOICEMAIL_MESSAGE
        );
        let foreign = voicemail_message(true, Some("+4915112345678"));
        assert!(foreign.contains("Nous essaierons") && !foreign.contains("4915"));
    }

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
