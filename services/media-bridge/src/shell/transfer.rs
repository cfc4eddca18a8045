//! Warm transfer, the bridge's side. When the agent calls `transfer_to_human` (offered only
//! when a human number is configured and within its hours), this dials the human with no
//! stream and waits: webhook-svc speaks a short summary to the human when they answer, stops
//! this call's stream and bridges the two calls (`callway:transfer:<ref>` = `bridged`; the
//! stream's end then ends this session). If nobody answers (or anything fails), the state says
//! `failed` and the agent is told, so it can offer a callback slot instead.

use super::BridgeState;
use callway_core::call_context::{key_hash, keys, CallContext};
use callway_core::telnyx::TelnyxError;
use std::time::Duration;

/// What the agent is told when the human did not take the call.
pub const FAILED_NOTICE: &str = "Le conseiller n'a pas pu prendre l'appel. Dis-le à la personne en une phrase, \
propose-lui un créneau pour qu'un conseiller la rappelle, puis enregistre-le avec record_qualification \
(next_step callback et preferred_slot).";

/// How long the human may take to answer and hear the summary.
const WAIT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(300);

/// Runs one transfer; resolves with `true` when it failed (the agent must be told), `false`
/// when the call was handed over or another transfer of this call is already running.
pub async fn run(state: BridgeState, ctx: CallContext, reason: String) -> bool {
    let s = &state.0;
    let Some(target) = s.tuning.transfer.clone() else {
        return true;
    };
    if !target.hours.is_open(chrono::Utc::now()) {
        tracing::info!("transfer asked outside the human's hours");
        return true;
    }
    let key = keys::transfer(&ctx.call_ref);
    let store = s.tuning.store_timeout;
    match tokio::time::timeout(
        store,
        s.contexts
            .set_if_absent(&key, "dialing", callway_core::call_context::CONTEXT_TTL),
    )
    .await
    {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return false,
        _ => return true,
    }
    tracing::info!(reason = %reason, "transfer: dialling the human");
    let command_id = format!("transfer-{}", key_hash(ctx.call_ref.as_str()));
    let dialled = tokio::time::timeout(
        s.tuning.hangup_timeout,
        s.telnyx.dial_plain(
            &target.number,
            &ctx.call_ref.to_transfer_state(ctx.lead_id),
            &command_id,
        ),
    )
    .await;
    match dialled {
        // Placed, or perhaps placed: the human leg's webhooks decide.
        Ok(Ok(_)) | Ok(Err(TelnyxError::Unknown(_))) => {}
        other => {
            tracing::warn!(result = ?other.map(|r| r.map(|_| ())), "transfer: the human was not dialled");
            let _ = s
                .contexts
                .set_value(
                    &key,
                    "failed".into(),
                    callway_core::call_context::CONTEXT_TTL,
                )
                .await;
            return true;
        }
    }
    let until = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(POLL).await;
        if let Ok(Ok(Some(v))) = tokio::time::timeout(store, s.contexts.get_value(&key)).await {
            match v.as_str() {
                "bridged" => return false,
                "failed" => return true,
                _ => {}
            }
        }
    }
    tracing::warn!("transfer: no answer from the human in time");
    let _ = s
        .contexts
        .set_value(
            &key,
            "failed".into(),
            callway_core::call_context::CONTEXT_TTL,
        )
        .await;
    true
}
