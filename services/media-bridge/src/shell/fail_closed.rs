//! A valid one-time token whose call context is gone (expired, or removed by a racing
//! `call.hangup`): fail closed. The socket is accepted so the callee is not left in silence:
//! once Telnyx's `start` names the call, we say a short apology with Telnyx `speak` and hang up.
//! No OpenAI session is opened. The token being ours (one-shot, issued for this dial) is what
//! authorises acting on the `call_control_id` the stream reports.

use crate::core::telnyx_frames::{self, StreamStart, TelnyxFrame};
use crate::shell::call::{MAX_TELNYX_MESSAGE, START_WAIT};
use crate::shell::hangup::{hang_up_call, passive_until_closed};
use crate::shell::state::BridgeState;
use crate::shell::ws_io::{self, Ws, WsEvent};
use callway_core::call_context::{random_id, CallRef};
use std::time::Duration;
use tokio::sync::mpsc;

pub const APOLOGY: &str =
    "Désolé, nous ne pouvons pas poursuivre cet appel. Nous vous recontacterons. Au revoir.";
/// Time for the apology to play before the hang-up cuts it.
const SPEAK_WAIT: Duration = Duration::from_secs(6);

pub async fn run(state: BridgeState, ws: Ws, call_ref: CallRef) {
    let (tx, mut rx) = mpsc::channel(64);
    let telnyx = ws_io::spawn(ws, MAX_TELNYX_MESSAGE, tx);
    let start = wait_for_start(&mut rx).await;
    // Act only on the call this token was issued for: its `client_state` must carry our id.
    let ours = start.as_ref().is_some_and(|s| {
        s.client_state
            .as_deref()
            .and_then(CallRef::from_client_state)
            == Some(call_ref.clone())
    });
    let Some(id) = start.and_then(|s| s.call_control_id).filter(|_| ours) else {
        tracing::warn!("no context and no start frame for this call: closing the stream");
        telnyx.close(1008).await;
        return;
    };
    tracing::warn!("call context missing: apologising and hanging up (no agent)");
    let command_id = random_id("cmd_");
    let speak = state.0.telnyx.speak(&id, APOLOGY, &command_id);
    match tokio::time::timeout(state.0.tuning.hangup_timeout, speak).await {
        Ok(Ok(())) => passive_until_closed(&mut rx, SPEAK_WAIT).await,
        Ok(Err(e)) => tracing::warn!(error = %e, "apology not spoken"),
        Err(_) => tracing::warn!("apology timed out"),
    }
    hang_up_call(state.0.telnyx.clone(), id, state.0.tuning.hangup_timeout).await;
    passive_until_closed(&mut rx, Duration::from_secs(10)).await;
    telnyx.close(1000).await;
}

/// Reads Telnyx frames until `start` (at most [`START_WAIT`]).
pub(crate) async fn wait_for_start(rx: &mut mpsc::Receiver<WsEvent>) -> Option<StreamStart> {
    tokio::time::timeout(START_WAIT, async {
        while let Some(WsEvent::Text(t)) = rx.recv().await {
            if let Ok(TelnyxFrame::Start(start)) = telnyx_frames::parse(&t) {
                return Some(start);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
