//! `POST /api/tools/trigger_call`: the agent asks us to call the visitor back.
//!
//! Order matters: every check and claim happens before the dial, and every claim is released if
//! the dial fails, so a refused or failed request changes nothing a retry would trip on.

use crate::error::ToolsError;
use crate::session::web_session;
use crate::ToolsState;
use actix_web::{web, HttpRequest, HttpResponse};
use callway_core::call_context::{
    phone_key, random_id, CallContext, CallRef, ContextStore, TimelineEvent,
};
use callway_core::lead::{CallbackStatus, LeadId};
use callway_core::prompts::MAX_SUMMARY_CHARS;
use callway_core::telnyx::{DialRequest, TelnyxClient};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What placing calls needs; absent when Telnyx is not configured.
#[derive(Clone)]
pub struct CallDeps {
    pub telnyx: TelnyxClient,
    pub contexts: ContextStore,
    /// `wss://host/media/telnyx`; the one-time token is added as `?token=`.
    pub stream_url: String,
    pub webhook_url: Option<String>,
    pub cooldown: Duration,
    pub daily_cap: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerCallRequest {
    lead_id: String,
    summary: String,
}

#[derive(Serialize)]
struct TriggerCallResponse {
    call_id: String,
    phone_masked: String,
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

#[tracing::instrument(
    name = "tool.trigger_call",
    skip_all,
    fields(web_session, lead_id, call_ref, phone)
)]
pub async fn trigger_call(
    req: HttpRequest,
    body: web::Json<TriggerCallRequest>,
    state: web::Data<ToolsState>,
) -> Result<HttpResponse, ToolsError> {
    let session = web_session(&req, &state.tokens)?;
    let span = tracing::Span::current();
    span.record("web_session", session.as_str());
    let deps = state.calls.as_ref().ok_or(ToolsError::CallsUnavailable)?;
    let body = body.into_inner();
    let summary = body.summary.trim();
    if summary.chars().count() > MAX_SUMMARY_CHARS {
        return Err(ToolsError::SummaryTooLong);
    }
    let lead_id = LeadId::parse(&body.lead_id).ok_or(ToolsError::LeadNotFound)?;
    let lead = state.leads.get(lead_id).await.map_err(ToolsError::Store)?;
    // A lead from another session is reported exactly like a missing one.
    let lead = lead
        .filter(|l| l.web_session_id == session.as_str())
        .ok_or(ToolsError::LeadNotFound)?;
    span.record("lead_id", lead_id.to_string().as_str());
    span.record("phone", lead.phone.masked().as_str());

    let c = &deps.contexts;
    let session_key = session_claim_key(session.as_str());
    if !c
        .claim(&session_key, Duration::from_secs(24 * 3600))
        .await
        .map_err(ToolsError::Context)?
    {
        return Err(ToolsError::CallbackAlreadyRequested);
    }
    let cooldown = cooldown_key(lead.phone.as_e164());
    match c.claim(&cooldown, deps.cooldown).await {
        Ok(true) => {}
        failed => {
            let _ = c.delete_key(&session_key).await;
            return Err(match failed {
                Err(e) => ToolsError::Context(e),
                Ok(_) => ToolsError::NumberCooldown,
            });
        }
    }
    let day = daily_key();
    // Undoes every claim, the day's count included: a request that fails changes nothing.
    let release = |extra: Option<CallRef>| {
        let c = c.clone();
        let (session_key, cooldown, day) = (session_key.clone(), cooldown.clone(), day.clone());
        async move {
            let _ = c.delete_key(&session_key).await;
            let _ = c.delete_key(&cooldown).await;
            let _ = c.decr(&day).await;
            if let Some(r) = extra {
                let _ = c.remove(&r).await;
            }
        }
    };
    match c.incr(&day, Duration::from_secs(2 * 24 * 3600)).await {
        Ok(n) if n <= deps.daily_cap => {}
        counted => {
            release(None).await;
            return Err(match counted {
                Err(e) => ToolsError::Context(e),
                Ok(_) => ToolsError::DailyCapReached,
            });
        }
    }

    let call_ref = CallRef::generate();
    span.record("call_ref", call_ref.as_str());
    let mut ctx = CallContext {
        call_ref: call_ref.clone(),
        lead_id,
        first_name: lead.first_name.as_str().to_owned(),
        summary: summary.to_owned(),
        web_session_id: session.as_str().to_owned(),
        phone_masked: lead.phone.masked(),
        stream_secret: random_id("ss_"),
        call_control_id: None,
        traceparent: callway_core::telemetry::current_traceparent(),
        created_at: chrono::Utc::now(),
    };
    let stored = async {
        c.put(&ctx).await?;
        c.set_owner(&call_ref, session.as_str()).await?;
        c.push_event(&call_ref, &TimelineEvent::now("dialing", None))
            .await?;
        c.issue_stream_token(&call_ref).await
    }
    .await;
    let stream_token = match stored {
        Ok(t) => t,
        Err(e) => {
            release(Some(call_ref)).await;
            return Err(ToolsError::Context(e));
        }
    };
    // Before the dial: once Telnyx has the call, its webhooks may move the lead on (ringing,
    // even a fast hang-up), and a later `dialing` would overwrite that.
    if let Err(e) = state
        .leads
        .update_callback(lead_id, CallbackStatus::Dialing, Some(summary))
        .await
    {
        tracing::warn!(error = %e, "lead status not updated");
    }
    let dial = DialRequest {
        to_e164: lead.phone.as_e164().to_owned(),
        client_state: call_ref.to_client_state(),
        stream_url: format!("{}?token={stream_token}", deps.stream_url),
        stream_auth_token: ctx.stream_secret.clone(),
        // Unique per dial; the client re-sends the same id on retries.
        command_id: random_id("cmd_"),
        webhook_url: deps.webhook_url.clone(),
    };
    let answer = match deps.telnyx.dial(&dial).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "dial failed");
            release(Some(call_ref)).await;
            let _ = state
                .leads
                .update_callback(lead_id, CallbackStatus::Failed, None)
                .await;
            return Err(ToolsError::Dial(e));
        }
    };
    ctx.call_control_id = Some(answer.call_control_id);
    if let Err(e) = c.put(&ctx).await {
        // The call is already placed: the bridge still finds the context written above.
        tracing::warn!(error = %e, "could not record the call control id in the context");
    }
    tracing::info!("callback dialled");
    Ok(HttpResponse::Ok().json(TriggerCallResponse {
        call_id: call_ref.as_str().to_owned(),
        phone_masked: lead.phone.masked(),
    }))
}
