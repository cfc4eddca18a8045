//! Warm transfer, the webhooks' side: the human's leg (its `client_state` ends `|transfer`) is
//! answered → a short spoken summary for them (`speak`, French premium voice) → when it ends,
//! the callee's stream is stopped (the agent leaves: the bridge closes its OpenAI session) and
//! the two calls are bridged. If the human's leg ends before that (no answer, busy, hung up),
//! the transfer is marked failed and the bridge tells the agent, which offers a callback slot.
//! Every command's id derives from the event, so a redelivered event repeats nothing.

use crate::error::WebhookError;
use crate::events::{CallEvent, EventData};
use crate::WebhookState;
use callway_core::call_context::{key_hash, keys, CallContext, CallRef, CONTEXT_TTL};
use callway_core::transcript::Speaker;

/// What the human hears before the bridge: who, and what they want (no number, no id).
pub fn summary(ctx: &CallContext, q: Option<&callway_core::call_record::Qualification>) -> String {
    let who = if ctx.first_name.is_empty() {
        "une personne".to_owned()
    } else {
        ctx.first_name.chars().take(60).collect()
    };
    let need = match q {
        Some(q) => format!("Activité : {}. Besoin : {}.", q.activity, q.main_need),
        None => ctx
            .web_transcript
            .iter()
            .rev()
            .find(|t| t.speaker == Speaker::Visitor)
            .map(|t| {
                format!(
                    "Sa demande : {}",
                    t.text.chars().take(200).collect::<String>()
                )
            })
            .unwrap_or_default(),
    };
    format!("Bonjour, ici l'agent IA de Callway. Je vous transfère {who}, qui souhaite parler à un conseiller. {need}")
        .trim()
        .to_owned()
}

pub async fn handle(
    state: &WebhookState,
    call_ref: &CallRef,
    event: &CallEvent,
    data: &EventData,
) -> Result<&'static str, WebhookError> {
    let c = &state.contexts;
    let key = keys::transfer(call_ref);
    let (Some(human), Some(telnyx)) = (
        data.payload.call_control_id.as_deref(),
        state.telnyx.as_ref(),
    ) else {
        return Ok("ignored");
    };
    let Some(ctx) = c.load(call_ref).await? else {
        // The callee's call is over: nobody to bridge to.
        if matches!(event, CallEvent::Answered) {
            let _ = telnyx
                .hangup(human, &format!("hangup-{}", key_hash(&data.id)))
                .await;
        }
        return Ok("ignored");
    };
    let state_now = c.get_value(&key).await?;
    match event {
        CallEvent::Answered => {
            let q = c.qualification(call_ref).await?;
            let text = summary(&ctx, q.as_ref());
            c.set_value(&key, "answered".into(), CONTEXT_TTL).await?;
            match telnyx
                .speak(human, &text, &format!("speak-{}", key_hash(&data.id)))
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_call_ended() => {}
                Err(e) => return Err(e.into()),
            }
        }
        CallEvent::SpeakEnded { .. } if state_now.as_deref() == Some("answered") => {
            let Some(callee) = ctx.call_control_id.as_deref() else {
                c.set_value(&key, "failed".into(), CONTEXT_TTL).await?;
                return Ok("accepted");
            };
            // The agent leaves first (its session ends with the stream), then the two talk.
            match telnyx
                .streaming_stop(callee, &format!("streaming_stop-{}", key_hash(&data.id)))
                .await
            {
                Ok(()) => {}
                Err(e) => tracing::info!(error = %e, "callee stream not stopped (already gone)"),
            }
            match telnyx
                .bridge(human, callee, &format!("bridge-{}", key_hash(&data.id)))
                .await
            {
                Ok(()) => {
                    c.set_value(&key, "bridged".into(), CONTEXT_TTL).await?;
                    tracing::info!("transfer: bridged to the human");
                }
                Err(e) if e.is_call_ended() => {
                    c.set_value(&key, "failed".into(), CONTEXT_TTL).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        CallEvent::Hangup { cause } if state_now.as_deref() != Some("bridged") => {
            tracing::info!(cause = %cause, "transfer: the human's leg ended before the bridge");
            c.set_value(&key, "failed".into(), CONTEXT_TTL).await?;
        }
        _ => {}
    }
    Ok("accepted")
}
