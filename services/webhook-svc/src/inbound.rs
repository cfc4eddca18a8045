//! The visitor calls back: an incoming call to our Telnyx number (`call.initiated`, direction
//! `incoming`) is answered and bridged to the phone agent. If the caller's number matches a
//! lead created within the retention period, the agent continues that conversation (the lead's
//! first name and web conversation go into the call context); otherwise it is Callway's generic
//! agent. Caller ID can be spoofed: the context only lets the agent continue, and its
//! instructions forbid reading personal data back.
//!
//! The stream is started once the call is answered (`streaming_start`, with the stream's auth
//! token): Telnyx's `AnswerRequest` has no `stream_auth_token`, and the bridge refuses a stream
//! without one.

use crate::error::WebhookError;
use crate::events::EventData;
use crate::WebhookState;
use callway_core::call_context::{
    key_hash, keys, random_id, CallContext, CallKind, CallRef, CONTEXT_TTL,
};
use callway_core::call_record::{CallDirection, CallRecord};
use callway_core::lead::LeadId;
use callway_core::phone::PhoneE164;

/// Answers an incoming call and prepares its context.
pub async fn answer(state: &WebhookState, data: &EventData) -> Result<&'static str, WebhookError> {
    let (Some(id), Some(telnyx), Some(_)) = (
        data.payload.call_control_id.as_deref(),
        state.telnyx.as_ref(),
        state.stream_url.as_deref(),
    ) else {
        tracing::warn!("incoming call, but calls cannot be bridged here: ignored");
        return Ok("ignored");
    };
    let phone = data
        .payload
        .from
        .as_deref()
        .and_then(|f| PhoneE164::from_stored(f, f).ok());
    let since = chrono::Utc::now() - chrono::Duration::days(i64::from(state.retention_days));
    let lead = match &phone {
        Some(p) => state.leads.latest_by_phone(p, since).await?,
        None => None,
    };
    let call_ref = CallRef::generate();
    tracing::Span::current().record("call_ref", call_ref.as_str());
    let ctx = CallContext {
        call_ref: call_ref.clone(),
        attempt: 1,
        kind: if lead.is_some() {
            CallKind::InboundKnown
        } else {
            CallKind::InboundUnknown
        },
        lead_id: lead.as_ref().map(|l| l.id).unwrap_or_else(LeadId::new),
        first_name: lead
            .as_ref()
            .map(|l| l.first_name.as_str().to_owned())
            .unwrap_or_default(),
        web_transcript: lead
            .as_ref()
            .map(|l| {
                callway_core::transcript::bounded(callway_core::transcript::from_summary(
                    l.summary.as_deref().unwrap_or_default(),
                ))
            })
            .unwrap_or_default(),
        web_session_id: lead
            .as_ref()
            .map(|l| l.web_session_id.clone())
            .unwrap_or_else(|| "inbound".to_owned()),
        phone_masked: phone.as_ref().map(|p| p.masked()).unwrap_or_default(),
        stream_secret: random_id("ss_"),
        call_control_id: Some(id.to_owned()),
        traceparent: None,
        created_at: chrono::Utc::now(),
    };
    let c = &state.contexts;
    c.put(&ctx).await?;
    let token = c.issue_stream_token(&call_ref).await?;
    c.set_value(&keys::pending_stream(&call_ref), token, CONTEXT_TTL)
        .await?;
    if let Some(lead) = &lead {
        let mut record =
            CallRecord::dialled(call_ref.as_str(), lead.id, 1, &lead.consent.wording_version);
        record.direction = CallDirection::Inbound;
        record.telnyx_call_control_id = Some(id.to_owned());
        state.leads.record_call(&record).await?;
    }
    let command_id = format!("answer-{}", key_hash(&data.id));
    match telnyx
        .answer(id, &call_ref.to_client_state(ctx.lead_id), &command_id)
        .await
    {
        Ok(()) => {}
        Err(e) if e.is_call_ended() => return Ok("ignored"),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(kind = ?ctx.kind, "incoming call answered");
    Ok("accepted")
}

/// Once an incoming call is answered: its media stream to the bridge.
pub async fn start_stream(
    state: &WebhookState,
    ctx: &CallContext,
    call_control_id: &str,
    event_id: &str,
) -> Result<(), WebhookError> {
    let (Some(telnyx), Some(url)) = (state.telnyx.as_ref(), state.stream_url.as_deref()) else {
        return Ok(());
    };
    let Some(token) = state
        .contexts
        .get_value(&keys::pending_stream(&ctx.call_ref))
        .await?
    else {
        return Ok(());
    };
    let command_id = format!("streaming_start-{}", key_hash(event_id));
    match telnyx
        .streaming_start(
            call_control_id,
            &format!("{url}?token={token}"),
            &ctx.stream_secret,
            &command_id,
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if e.is_call_ended() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
