//! One dial per call ref, and what we know of it. The first writer of `sending` is the only one
//! that may send `POST /v2/calls` for that ref; an answer that never came (timeout, 5xx, reset)
//! leaves the state `unconfirmed` until Telnyx's `call.initiated` for the ref says the call went
//! out, or the confirmation window ends.

use super::{keys, CallRef, ContextError, ContextStore, CONTEXT_TTL};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialState {
    /// The dial is being sent.
    Sending,
    /// Telnyx answered 2xx, or its `call.initiated` for this ref arrived.
    Placed,
    /// The answer was lost: the call may or may not be out; never dialled again.
    Unconfirmed,
    /// Telnyx certainly did not place it (a 4xx, or the request never reached it).
    NotPlaced,
}

impl DialState {
    pub fn as_str(self) -> &'static str {
        match self {
            DialState::Sending => "sending",
            DialState::Placed => "placed",
            DialState::Unconfirmed => "unconfirmed",
            DialState::NotPlaced => "not_placed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            DialState::Sending,
            DialState::Placed,
            DialState::Unconfirmed,
            DialState::NotPlaced,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

impl ContextStore {
    /// True when this caller may send the dial for `call_ref` (nobody did before).
    pub async fn begin_dial(&self, call_ref: &CallRef) -> Result<bool, ContextError> {
        self.set_if_absent(
            &keys::dial(call_ref),
            DialState::Sending.as_str(),
            CONTEXT_TTL,
        )
        .await
    }

    pub async fn set_dial_state(
        &self,
        call_ref: &CallRef,
        state: DialState,
    ) -> Result<(), ContextError> {
        self.set_value(&keys::dial(call_ref), state.as_str().into(), CONTEXT_TTL)
            .await
    }

    pub async fn dial_state(&self, call_ref: &CallRef) -> Result<Option<DialState>, ContextError> {
        Ok(self
            .get_value(&keys::dial(call_ref))
            .await?
            .as_deref()
            .and_then(DialState::parse))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_first_caller_dials_a_ref() {
        let s = ContextStore::memory();
        let r = CallRef::generate();
        assert!(s.begin_dial(&r).await.unwrap());
        assert!(!s.begin_dial(&r).await.unwrap());
        assert_eq!(s.dial_state(&r).await.unwrap(), Some(DialState::Sending));
        s.set_dial_state(&r, DialState::Unconfirmed).await.unwrap();
        assert_eq!(
            s.dial_state(&r).await.unwrap(),
            Some(DialState::Unconfirmed)
        );
        assert!(!s.begin_dial(&r).await.unwrap());
    }
}
