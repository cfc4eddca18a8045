//! Ending a call from our side: the Telnyx hang-up command, and waiting for Telnyx to end the
//! stream afterwards.

use crate::shell::ws_io::Conn;
use callway_core::call_context::random_id;
use callway_ws::Event;
use std::time::Duration;

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

/// Reads Telnyx frames, handing each text to `on_text` until it returns `Some`, the stream
/// closes or `limit` passes. Pings are answered on the way.
pub async fn read_until<T>(
    conn: &mut Conn,
    limit: Duration,
    mut on_text: impl FnMut(&str) -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(limit, async {
        loop {
            while let Some(ev) = conn.next_event() {
                match ev {
                    Event::Text(t) => {
                        if let Some(found) = on_text(t) {
                            return Some(found);
                        }
                    }
                    Event::Binary(_) => {}
                    Event::Closed { .. } => {
                        // Our answer to its Close leaves now.
                        let _ = conn.flush().await;
                        return None;
                    }
                }
            }
            if conn.is_finished() {
                return None;
            }
            let _ = conn.flush().await;
            conn.readable().await;
        }
    })
    .await
    .ok()
    .flatten()
}

/// Reads (and ignores) Telnyx frames until the stream closes or `limit` passes.
pub async fn passive_until_closed(conn: &mut Conn, limit: Duration) {
    read_until(conn, limit, |_| None::<()>).await;
}
