//! A valid one-time token whose call context is gone (expired, or removed by a racing
//! `call.hangup`): fail closed. The socket is accepted so the callee is not left in silence:
//! once Telnyx's `start` names the call, we say a short apology with Telnyx `speak` and hang up.
//! No OpenAI session is opened. The token being ours (one-shot, issued for this dial) is what
//! authorises acting on the `call_control_id` the stream reports.

use crate::core::telnyx_frames::{self, StreamStart, TelnyxFrame};
use crate::shell::call::START_WAIT;
use crate::shell::hangup::read_until;
use crate::shell::hangup::{hang_up_call, passive_until_closed};
use crate::shell::state::BridgeState;
use crate::shell::ws_io::{self, Conn};
use callway_core::call_context::{random_id, CallRef};
use std::time::Duration;

pub const APOLOGY: &str =
    "Désolé, nous ne pouvons pas poursuivre cet appel. Nous vous recontacterons. Au revoir.";
/// Time for the apology to play before the hang-up cuts it.
const SPEAK_WAIT: Duration = Duration::from_secs(6);

pub async fn run(state: BridgeState, mut telnyx: Conn, call_ref: CallRef) {
    let start = wait_for_start(&mut telnyx).await;
    // Act only on the call this token was issued for: its `client_state` must carry our id.
    let ours = start.as_ref().is_some_and(|s| {
        s.client_state
            .as_deref()
            .and_then(CallRef::from_client_state)
            == Some(call_ref.clone())
    });
    let Some(id) = start.and_then(|s| s.call_control_id).filter(|_| ours) else {
        tracing::warn!("no context and no start frame for this call: closing the stream");
        ws_io::retire(telnyx, 1008);
        return;
    };
    tracing::warn!("call context missing: apologising and hanging up (no agent)");
    let command_id = random_id("cmd_");
    let speak = state.0.telnyx.speak(&id, APOLOGY, &command_id);
    match tokio::time::timeout(state.0.tuning.hangup_timeout, speak).await {
        Ok(Ok(())) => passive_until_closed(&mut telnyx, SPEAK_WAIT).await,
        Ok(Err(e)) => tracing::warn!(error = %e, "apology not spoken"),
        Err(_) => tracing::warn!("apology timed out"),
    }
    hang_up_call(state.0.telnyx.clone(), id, state.0.tuning.hangup_timeout).await;
    passive_until_closed(&mut telnyx, Duration::from_secs(10)).await;
    ws_io::retire(telnyx, 1000);
}

/// Reads Telnyx frames until `start` (at most [`START_WAIT`]).
pub(crate) async fn wait_for_start(telnyx: &mut Conn) -> Option<StreamStart> {
    read_until(telnyx, START_WAIT, |t| match telnyx_frames::parse(t) {
        Ok(TelnyxFrame::Start(start)) => Some(start),
        _ => None,
    })
    .await
}
