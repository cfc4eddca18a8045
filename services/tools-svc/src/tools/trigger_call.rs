//! `trigger_call` in two steps, so the phone never rings while the web agent still listens:
//! 1. `prepare_callback` (when the model calls the tool): the lead must belong to this web session;
//!    then the claims — one callback per session, a cooldown per number, the hourly limits, the
//!    daily cap — and the call context (with the web transcript) in the shared store. Any failure
//!    gives every claim back.
//! 2. `place_callback` (after the web call is hung up): the Telnyx dial. A failed dial gives the
//!    claims back and marks the lead and the timeline `failed`.

use crate::error::ToolsError;
use crate::ToolsState;
use callway_core::call_context::{
    phone_key, random_id, CallContext, CallRef, ContextStore, TimelineEvent,
};
use callway_core::lead::{CallbackStatus, LeadId};
use callway_core::limits::{LimitKind, Taken};
use callway_core::telnyx::DialRequest;
use callway_core::transcript;
use callway_core::web_call::WebCall;
use std::time::Duration;

/// A callback ready to dial, and what to give back if it cannot be.
pub struct PreparedCallback {
    pub call_ref: CallRef,
    pub lead_id: LeadId,
    pub phone_masked: String,
    to_e164: String,
    stream_token: String,
    stream_secret: String,
    /// The trigger_call span's context: the dial, placed later, joins it.
    traceparent: Option<String>,
    claims: Claims,
}

impl std::fmt::Debug for PreparedCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PreparedCallback({}, {})",
            self.call_ref.as_str(),
            self.phone_masked
        )
    }
}

struct Claims {
    session_key: String,
    cooldown_key: String,
    day_key: Option<String>,
    hourly: Option<Taken>,
}

fn session_claim_key(session: &str) -> String {
    format!("callway:callback:session:{session}")
}
fn cooldown_key(e164: &str) -> String {
    format!("callway:callback:cooldown:{}", phone_key(e164))
}
fn daily_key() -> String {
    format!(
        "callway:callback:day:{}",
        chrono::Utc::now().format("%Y-%m-%d")
    )
}

async fn release(state: &ToolsState, c: &ContextStore, claims: Claims, call_ref: Option<&CallRef>) {
    let _ = c.delete_key(&claims.session_key).await;
    let _ = c.delete_key(&claims.cooldown_key).await;
    if let Some(day) = &claims.day_key {
        let _ = c.decr(day).await;
    }
    if let Some(t) = claims.hourly {
        state.limits.give_back(t).await;
    }
    if let Some(r) = call_ref {
        let _ = c.remove(r).await;
    }
}

#[tracing::instrument(name = "tool.trigger_call", skip_all, fields(web_session = %call.session, lead_id, call_ref, phone))]
pub async fn prepare_callback(
    state: &ToolsState,
    call: &WebCall,
    lead_id: &str,
) -> Result<PreparedCallback, ToolsError> {
    let span = tracing::Span::current();
    let deps = state.calls.as_ref().ok_or(ToolsError::CallsUnavailable)?;
    let lead_id = LeadId::parse(lead_id).ok_or(ToolsError::LeadNotFound)?;
    let lead = state.leads.get(lead_id).await.map_err(ToolsError::Store)?;
    // A lead from another session is reported exactly like a missing one.
    let lead = lead
        .filter(|l| l.web_session_id == call.session.as_str())
        .ok_or(ToolsError::LeadNotFound)?;
    span.record("lead_id", lead_id.to_string().as_str());
    span.record("phone", lead.phone.masked().as_str());

    let c = &deps.contexts;
    let mut claims = Claims {
        session_key: session_claim_key(call.session.as_str()),
        cooldown_key: cooldown_key(lead.phone.as_e164()),
        day_key: None,
        hourly: None,
    };
    if !c
        .claim(&claims.session_key, Duration::from_secs(24 * 3600))
        .await
        .map_err(ToolsError::Context)?
    {
        return Err(ToolsError::CallbackAlreadyRequested);
    }
    match c.claim(&claims.cooldown_key, deps.cooldown).await {
        Ok(true) => {}
        failed => {
            let _ = c.delete_key(&claims.session_key).await;
            return Err(match failed {
                Err(e) => ToolsError::Context(e),
                Ok(_) => ToolsError::NumberCooldown,
            });
        }
    }
    match state
        .limits
        .take(
            LimitKind::Callback,
            &call.client,
            chrono::Utc::now().timestamp(),
        )
        .await
    {
        Ok(t) => claims.hourly = Some(t),
        Err(e) => {
            release(state, c, claims, None).await;
            return Err(ToolsError::from_limit(e));
        }
    }
    let day = daily_key();
    let counted = c.incr(&day, Duration::from_secs(2 * 24 * 3600)).await;
    claims.day_key = Some(day);
    match counted {
        Ok(n) if n <= deps.daily_cap => {}
        counted => {
            release(state, c, claims, None).await;
            return Err(match counted {
                Err(e) => ToolsError::Context(e),
                Ok(_) => ToolsError::DailyCapReached,
            });
        }
    }

    let turns = match state.web_calls.turns(&call.session).await {
        Ok(t) => transcript::bounded(t),
        Err(e) => {
            release(state, c, claims, None).await;
            return Err(ToolsError::Context(e));
        }
    };
    let call_ref = CallRef::generate();
    span.record("call_ref", call_ref.as_str());
    let ctx = CallContext {
        call_ref: call_ref.clone(),
        lead_id,
        first_name: lead.first_name.as_str().to_owned(),
        web_transcript: turns.clone(),
        web_session_id: call.session.as_str().to_owned(),
        phone_masked: lead.phone.masked(),
        stream_secret: random_id("ss_"),
        call_control_id: None,
        traceparent: callway_core::telemetry::current_traceparent(),
        created_at: chrono::Utc::now(),
    };
    let stored = async {
        c.put(&ctx).await?;
        c.set_owner(&call_ref, call.session.as_str()).await?;
        c.issue_stream_token(&call_ref).await
    }
    .await;
    let stream_token = match stored {
        Ok(t) => t,
        Err(e) => {
            release(state, c, claims, Some(&call_ref)).await;
            return Err(ToolsError::Context(e));
        }
    };
    // The business reads the conversation itself, not a model-written summary.
    let summary = transcript::summary(&turns, callway_core::prompts::MAX_SUMMARY_CHARS);
    if let Err(e) = state
        .leads
        .update_callback(lead_id, CallbackStatus::Dialing, Some(&summary))
        .await
    {
        tracing::warn!(error = %e, "lead status not updated");
    }
    tracing::info!("callback prepared");
    Ok(PreparedCallback {
        call_ref,
        lead_id,
        phone_masked: lead.phone.masked(),
        to_e164: lead.phone.as_e164().to_owned(),
        stream_token,
        stream_secret: ctx.stream_secret,
        traceparent: ctx.traceparent,
        claims,
    })
}

/// Dials. Runs after the web call ended, in a span that continues trigger_call's.
pub async fn place_callback(state: &ToolsState, p: PreparedCallback) -> Result<(), ToolsError> {
    let span = tracing::info_span!("callback.place", call_ref = %p.call_ref.as_str(), phone = %p.phone_masked);
    callway_core::telemetry::set_remote_parent(&span, p.traceparent.as_deref());
    tracing::Instrument::instrument(place(state, p), span).await
}

async fn place(state: &ToolsState, p: PreparedCallback) -> Result<(), ToolsError> {
    let deps = state.calls.as_ref().ok_or(ToolsError::CallsUnavailable)?;
    let c = &deps.contexts;
    if let Err(e) = c
        .push_event(&p.call_ref, &TimelineEvent::now("dialing", None))
        .await
    {
        tracing::warn!(error = %e, "timeline not updated");
    }
    let dial = DialRequest {
        to_e164: p.to_e164.clone(),
        client_state: p.call_ref.to_client_state(),
        stream_url: format!("{}?token={}", deps.stream_url, p.stream_token),
        stream_auth_token: p.stream_secret.clone(),
        // Unique per dial; the client re-sends the same id on retries.
        command_id: random_id("cmd_"),
        webhook_url: deps.webhook_url.clone(),
    };
    let answer = match deps.telnyx.dial(&dial).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "dial failed");
            let _ = c
                .push_event(
                    &p.call_ref,
                    &TimelineEvent::now("ended", Some("failed".into())),
                )
                .await;
            let _ = state
                .leads
                .update_callback(p.lead_id, CallbackStatus::Failed, None)
                .await;
            release(state, c, p.claims, Some(&p.call_ref)).await;
            return Err(ToolsError::Dial(e));
        }
    };
    match c.load(&p.call_ref).await {
        Ok(Some(mut ctx)) => {
            ctx.call_control_id = Some(answer.call_control_id);
            if let Err(e) = c.put(&ctx).await {
                // The call is placed: the bridge still finds the context written before.
                tracing::warn!(error = %e, "could not record the call control id in the context");
            }
        }
        Ok(None) => tracing::warn!("context gone right after the dial"),
        Err(e) => tracing::warn!(error = %e, "context not readable after the dial"),
    }
    tracing::info!("callback dialled");
    Ok(())
}
