//! `trigger_call` in two steps, so the phone never rings while the web agent still listens:
//! 1. `prepare_callback` (when the model calls the tool): the lead must belong to this web session;
//!    then the claims — one callback per session, a cooldown per number (in Redis, and checked in
//!    PostgreSQL too so that a lost Redis does not lift it), the hourly limits, the daily cap —
//!    and the call context (with the web transcript) in the shared store. The claims' holder is
//!    the lead: the same request retried after a fault finds its own claims and goes on, another
//!    is refused; a failure gives back only what is still ours (compare-and-delete).
//! 2. `place_callback` (after the web call is hung up): the lead's callback is claimed in
//!    PostgreSQL (at most once per lead, whatever Redis remembers), then exactly one dial per call
//!    ref. A dial Telnyx certainly refused, or never received, gives everything back and the lead
//!    shows `failed`. A dial whose answer was lost (timeout, 5xx, reset) is *not* repeated: the
//!    call may be out, and Telnyx's `call.initiated` for the ref (written by webhook-svc) says so;
//!    without it within `CALLWAY_DIAL_CONFIRM_SECS` the lead shows `failed`, and the claims stay so
//!    that nobody dials that number again before the cooldown.

use crate::error::ToolsError;
use crate::ToolsState;
use callway_core::call_context::{
    keys, random_id, CallContext, CallFlag, CallRef, Claimed, ContextStore, DialState,
    TimelineEvent, TimelineKind,
};
use callway_core::lead::{CallbackStatus, LeadId};
use callway_core::limits::{LimitKind, Taken};
use callway_core::telnyx::{DialRequest, TelnyxError};
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
    /// The consent wording the person agreed to (kept with the call record).
    consent_version: String,
    /// Which attempt of the lead's callback: 1 from trigger_call, more from the retry queue.
    attempt: u8,
    /// The Redis claims of a visitor's request (`None` for a retry: the lead's durable claim in
    /// PostgreSQL, taken by the retry worker, is its guard).
    claims: Option<Claims>,
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
    /// The identity every claim carries: the lead being called back.
    holder: String,
    session_key: String,
    cooldown_key: String,
    day_key: Option<String>,
    hourly: Option<Taken>,
}

/// How often an unconfirmed dial looks for `call.initiated`.
const CONFIRM_POLL: Duration = Duration::from_millis(250);

async fn release(
    state: &ToolsState,
    c: &ContextStore,
    claims: Option<Claims>,
    call_ref: Option<&CallRef>,
) {
    if let Some(claims) = claims {
        let _ = c.release(&claims.session_key, &claims.holder).await;
        let _ = c.release(&claims.cooldown_key, &claims.holder).await;
        if let Some(day) = &claims.day_key {
            let _ = c.decr(day).await;
        }
        if let Some(t) = claims.hourly {
            state.limits.give_back(t).await;
        }
    }
    if let Some(r) = call_ref {
        let _ = c.remove(r).await;
    }
}

/// Counted: `callway.callbacks.requested`, and `.refused` by reason.
pub async fn prepare_callback(
    state: &ToolsState,
    call: &WebCall,
    lead_id: &str,
) -> Result<PreparedCallback, ToolsError> {
    let m = callway_core::metrics::get();
    m.callbacks_requested.add(1, &[]);
    let result = prepare(state, call, lead_id).await;
    if let Err(e) = &result {
        m.callback_refused(e.callback_refusal());
    }
    result
}

#[tracing::instrument(name = "tool.trigger_call", skip_all, fields(web_session = %call.session, lead_id, call_ref, phone))]
async fn prepare(
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
    if lead.callback_requested_at.is_some() {
        return Err(ToolsError::CallbackAlreadyRequested);
    }

    let c = &deps.contexts;
    let mut claims = Claims {
        holder: lead_id.to_string(),
        session_key: keys::callback_session(call.session.as_str()),
        cooldown_key: keys::callback_cooldown(lead.phone.as_e164()),
        day_key: None,
        hourly: None,
    };
    match c
        .acquire(
            &claims.session_key,
            &claims.holder,
            Duration::from_secs(24 * 3600),
        )
        .await
        .map_err(ToolsError::Context)?
    {
        Claimed::Other => return Err(ToolsError::CallbackAlreadyRequested),
        Claimed::New | Claimed::Ours => {}
    }
    match c
        .acquire(&claims.cooldown_key, &claims.holder, deps.cooldown)
        .await
    {
        Ok(Claimed::New | Claimed::Ours) => {}
        failed => {
            let _ = c.release(&claims.session_key, &claims.holder).await;
            return Err(match failed {
                Err(e) => ToolsError::Context(e),
                Ok(_) => ToolsError::NumberCooldown,
            });
        }
    }
    // The cooldown again, from PostgreSQL: it holds when Redis lost its keys.
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(deps.cooldown).unwrap_or(chrono::Duration::zero());
    match state.leads.callback_since(&lead.phone, since).await {
        Ok(false) => {}
        recent => {
            release(state, c, Some(claims), None).await;
            return Err(match recent {
                Err(e) => ToolsError::Store(e),
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
            release(state, c, Some(claims), None).await;
            return Err(ToolsError::from_limit(e));
        }
    }
    let day = keys::callback_day(chrono::Utc::now().date_naive());
    let counted = c.incr(&day, Duration::from_secs(2 * 24 * 3600)).await;
    claims.day_key = Some(day);
    match counted {
        Ok(n) if n <= deps.daily_cap => {}
        counted => {
            release(state, c, Some(claims), None).await;
            return Err(match counted {
                Err(e) => ToolsError::Context(e),
                Ok(_) => ToolsError::DailyCapReached,
            });
        }
    }

    let turns = match state.web_calls.turns(&call.session).await {
        Ok(t) => transcript::bounded(t),
        Err(e) => {
            release(state, c, Some(claims), None).await;
            return Err(ToolsError::Context(e));
        }
    };
    let call_ref = CallRef::generate();
    span.record("call_ref", call_ref.as_str());
    let ctx = CallContext {
        call_ref: call_ref.clone(),
        attempt: 1,
        kind: Default::default(),
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
            release(state, c, Some(claims), Some(&call_ref)).await;
            return Err(ToolsError::Context(e));
        }
    };
    // The business reads the conversation itself, not a model-written summary.
    let summary = transcript::summary(&turns, callway_core::prompts::MAX_SUMMARY_CHARS);
    if let Err(e) = state
        .leads
        .update_callback(lead_id, CallbackStatus::Pending, Some(&summary))
        .await
    {
        tracing::warn!(error = %e, "conversation not recorded on the lead");
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
        consent_version: lead.consent.wording_version.clone(),
        attempt: 1,
        claims: Some(claims),
    })
}

/// A missed callback's next attempt, after the retry worker claimed it on the lead: a fresh call
/// context (the web conversation read back from the lead's summary, for the phone agent), no
/// Redis claims (the lead's durable claim is the guard).
pub async fn prepare_retry(
    state: &ToolsState,
    lead: &callway_core::lead::Lead,
    attempt: u8,
) -> Result<PreparedCallback, ToolsError> {
    let deps = state.calls.as_ref().ok_or(ToolsError::CallsUnavailable)?;
    let c = &deps.contexts;
    let call_ref = CallRef::generate();
    let turns = transcript::bounded(transcript::from_summary(
        lead.summary.as_deref().unwrap_or_default(),
    ));
    let ctx = CallContext {
        call_ref: call_ref.clone(),
        attempt,
        kind: Default::default(),
        lead_id: lead.id,
        first_name: lead.first_name.as_str().to_owned(),
        web_transcript: turns,
        web_session_id: lead.web_session_id.clone(),
        phone_masked: lead.phone.masked(),
        stream_secret: random_id("ss_"),
        call_control_id: None,
        traceparent: None,
        created_at: chrono::Utc::now(),
    };
    let stored = async {
        c.put(&ctx).await?;
        c.set_owner(&call_ref, &lead.web_session_id).await?;
        c.issue_stream_token(&call_ref).await
    }
    .await;
    let stream_token = match stored {
        Ok(t) => t,
        Err(e) => {
            // Claimed but not dialled: the lead shows it, and this attempt is over.
            let _ = c.remove(&call_ref).await;
            let _ = state
                .leads
                .update_callback(lead.id, CallbackStatus::Failed, None)
                .await;
            return Err(ToolsError::Context(e));
        }
    };
    Ok(PreparedCallback {
        call_ref,
        lead_id: lead.id,
        phone_masked: lead.phone.masked(),
        to_e164: lead.phone.as_e164().to_owned(),
        stream_token,
        stream_secret: ctx.stream_secret,
        traceparent: None,
        consent_version: lead.consent.wording_version.clone(),
        attempt,
        claims: None,
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
    // The durable claim: one callback per lead, even if every Redis key is gone (a retry's was
    // taken by the retry worker before it prepared the call).
    let claimed = if p.attempt > 1 {
        Ok(true)
    } else {
        state.leads.claim_callback(p.lead_id).await
    };
    match claimed {
        Ok(true) => {}
        Ok(false) => {
            // The claims (held for this lead) belong to the callback that did claim it.
            tracing::warn!("the lead's callback was already claimed: not dialled");
            let _ = c.remove(&p.call_ref).await;
            return Err(ToolsError::CallbackAlreadyRequested);
        }
        Err(e) => {
            // Unknown whether the claim landed: nothing is dialled, and nothing given back in
            // PostgreSQL (a landed claim keeps the lead from a second dial; it shows `failed`).
            tracing::error!(error = %e, "callback claim not stored: not dialled");
            push(c, &p.call_ref, TimelineKind::Ended, Some("failed")).await;
            let _ = c.remove(&p.call_ref).await;
            return Err(ToolsError::Store(e));
        }
    }
    match c.begin_dial(&p.call_ref).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("this call ref was dialled before: not dialled again");
            return Err(ToolsError::CallbackAlreadyRequested);
        }
        Err(e) => {
            tracing::error!(error = %e, "dial state not stored: not dialled");
            not_placed(state, c, p).await;
            return Err(ToolsError::Context(e));
        }
    }
    // The call record exists before the call does: every webhook finds it.
    let record = callway_core::call_record::CallRecord::dialled(
        p.call_ref.as_str(),
        p.lead_id,
        p.attempt,
        &p.consent_version,
    );
    if let Err(e) = state.leads.record_call(&record).await {
        tracing::error!(error = %e, "call record not stored: not dialled");
        let _ = c.set_dial_state(&p.call_ref, DialState::NotPlaced).await;
        not_placed(state, c, p).await;
        return Err(ToolsError::Store(e));
    }
    push(c, &p.call_ref, TimelineKind::Dialing, None).await;
    let dial = DialRequest {
        to_e164: p.to_e164.clone(),
        client_state: p.call_ref.to_client_state(p.lead_id),
        stream_url: format!("{}?token={}", deps.stream_url, p.stream_token),
        stream_auth_token: p.stream_secret.clone(),
        // One id per call ref: should a dial ever be repeated, Telnyx ignores the copy.
        command_id: format!("dial-{}", keys::key_hash(p.call_ref.as_str())),
        webhook_url: deps.webhook_url.clone(),
    };
    let m = callway_core::metrics::get();
    let dialled = deps.telnyx.dial(&dial).await;
    if let Err(e) = &dialled {
        m.upstream_error(callway_core::metrics::Peer::Telnyx, e.kind());
    }
    match dialled {
        Ok(answer) => {
            m.callbacks_dialled.add(1, &[]);
            let _ = c.set_dial_state(&p.call_ref, DialState::Placed).await;
            record_call_control_id(c, &p.call_ref, answer.call_control_id).await;
            tracing::info!("callback dialled");
            Ok(())
        }
        Err(e @ (TelnyxError::Unknown(_) | TelnyxError::Unavailable { .. })) => {
            // The call may be out: never dialled again. Telnyx's webhooks decide.
            tracing::warn!(error = %e, "dial answer lost: waiting for call.initiated");
            let _ = c.set_dial_state(&p.call_ref, DialState::Unconfirmed).await;
            confirm(state, c, &p, deps.dial_confirm, e).await
        }
        Err(e) => {
            tracing::error!(error = %e, "dial refused: the call was not placed");
            let _ = c.set_dial_state(&p.call_ref, DialState::NotPlaced).await;
            m.callbacks_dial_failed.add(1, &[]);
            not_placed(state, c, p).await;
            Err(ToolsError::Dial(e))
        }
    }
}

/// Waits for `call.initiated` (the `Initiated` flag webhook-svc raises) for an unconfirmed dial.
async fn confirm(
    state: &ToolsState,
    c: &ContextStore,
    p: &PreparedCallback,
    window: Duration,
    dial_error: TelnyxError,
) -> Result<(), ToolsError> {
    let until = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < until {
        if let Ok(true) = c.is_raised(&p.call_ref, CallFlag::Initiated).await {
            tracing::info!("dial confirmed by call.initiated");
            callway_core::metrics::get().callbacks_dialled.add(1, &[]);
            return Ok(());
        }
        tokio::time::sleep(CONFIRM_POLL).await;
    }
    tracing::error!("no call.initiated for an unconfirmed dial: lead marked failed");
    callway_core::metrics::get()
        .callbacks_dial_failed
        .add(1, &[]);
    push(c, &p.call_ref, TimelineKind::Ended, Some("failed")).await;
    let _ = state
        .leads
        .update_callback(p.lead_id, CallbackStatus::Failed, None)
        .await;
    Err(ToolsError::Dial(dial_error))
}

/// Telnyx certainly did not place the call: everything is given back, the lead shows `failed`
/// and may be called back on a new request.
async fn not_placed(state: &ToolsState, c: &ContextStore, p: PreparedCallback) {
    push(c, &p.call_ref, TimelineKind::Ended, Some("failed")).await;
    if let Err(e) = state.leads.release_callback(p.lead_id).await {
        tracing::warn!(error = %e, "lead callback not released");
    }
    release(state, c, p.claims, Some(&p.call_ref)).await;
}

async fn record_call_control_id(c: &ContextStore, call_ref: &CallRef, id: String) {
    match c.load(call_ref).await {
        Ok(Some(mut ctx)) => {
            ctx.call_control_id = Some(id);
            if let Err(e) = c.put(&ctx).await {
                // The call is placed: the bridge still finds the context written before.
                tracing::warn!(error = %e, "could not record the call control id in the context");
            }
        }
        Ok(None) => tracing::warn!("context gone right after the dial"),
        Err(e) => tracing::warn!(error = %e, "context not readable after the dial"),
    }
}

async fn push(c: &ContextStore, call_ref: &CallRef, kind: TimelineKind, text: Option<&str>) {
    let ev = TimelineEvent::now(kind, text.map(str::to_owned));
    if let Err(e) = c.push_event(call_ref, &ev).await {
        tracing::warn!(error = %e, "timeline not updated");
    }
}
