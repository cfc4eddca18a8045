//! The answering-machine watch: premium AMD usually decides after the stream started.

use crate::shell::state::BridgeState;
use callway_core::call_context::AmdVerdict;
use callway_core::call_context::CallRef;
use std::time::Duration;

const AMD_POLL: Duration = Duration::from_millis(400);

/// True once the webhook service has recorded AMD's "machine" verdict; false on "human" or
/// when the watch window (`Tuning::amd_watch`) passes without a verdict.
pub async fn watch_amd(state: BridgeState, call_ref: CallRef) -> bool {
    let s = &state.0;
    let until = tokio::time::Instant::now() + s.tuning.amd_watch;
    // Admission has just read the flag: the first poll is one period later, not at once.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + AMD_POLL, AMD_POLL);
    while tokio::time::Instant::now() < until {
        tick.tick().await;
        if let Ok(Ok(Some(v))) =
            tokio::time::timeout(s.tuning.store_timeout, s.contexts.amd(&call_ref)).await
        {
            return v == AmdVerdict::Machine;
        }
    }
    false
}
