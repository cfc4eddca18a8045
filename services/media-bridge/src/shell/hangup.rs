//! Ending a call from our side: the Telnyx hang-up command, and waiting for Telnyx to end the
//! stream afterwards.

use crate::shell::ws_io::WsEvent;
use callway_core::call_context::random_id;
use std::time::Duration;
use tokio::sync::mpsc;

/// `hangup` via Call Control, bounded by `limit`; the client retries inside with the same
/// `command_id` (Telnyx de-duplicates), and "call already ended" (90018) counts as done.
pub async fn hang_up_call(telnyx: callway_core::telnyx::TelnyxClient, id: String, limit: Duration) {
    let command_id = random_id("cmd_");
    match tokio::time::timeout(limit, telnyx.hangup(&id, &command_id)).await {
        Ok(Ok(())) => tracing::info!("hang-up accepted"),
        Ok(Err(e)) if e.is_call_ended() => tracing::info!("call already ended"),
        Ok(Err(e)) => tracing::error!(error = %e, "hang-up failed"),
        Err(_) => tracing::error!("hang-up timed out"),
    }
}

/// Reads (and ignores) Telnyx frames until the stream closes or `limit` passes.
pub async fn passive_until_closed(rx: &mut mpsc::Receiver<WsEvent>, limit: Duration) {
    let _ = tokio::time::timeout(limit, async {
        while let Some(ev) = rx.recv().await {
            if matches!(ev, WsEvent::Closed { .. }) {
                break;
            }
        }
    })
    .await;
}
