//! Small per-call facts the services share while a call lives: whether it was answered, what
//! answering-machine detection concluded, whether the media stream failed, whether Telnyx said
//! it placed the call. Typed: a service cannot write a value another does not read.

use super::{keys, CallRef, ContextError, ContextStore, CONTEXT_TTL};

/// Who answered, as Telnyx's premium AMD (or a greeting's end) told us. `silence` and
/// `not_sure` are no verdict: the agent keeps the line and nothing is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdVerdict {
    Human,
    Machine,
    Fax,
}

impl AmdVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            AmdVerdict::Human => "human",
            AmdVerdict::Machine => "machine",
            AmdVerdict::Fax => "fax",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "human" => Some(AmdVerdict::Human),
            "machine" => Some(AmdVerdict::Machine),
            "fax" => Some(AmdVerdict::Fax),
            _ => None,
        }
    }
}

/// The flags a call can carry (one key each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallFlag {
    /// `call.answered` arrived.
    Answered,
    /// The AMD verdict ([`AmdVerdict`]).
    Amd,
    /// `streaming.failed` arrived: the agent never reached the callee.
    StreamFailed,
    /// `call.initiated` arrived: Telnyx placed the call (settles a dial whose answer was lost).
    Initiated,
}

impl CallFlag {
    fn name(self) -> &'static str {
        match self {
            CallFlag::Answered => "answered",
            CallFlag::Amd => "amd",
            CallFlag::StreamFailed => "stream_failed",
            CallFlag::Initiated => "initiated",
        }
    }
}

impl ContextStore {
    /// Raises a yes/no flag.
    pub async fn raise(&self, call_ref: &CallRef, flag: CallFlag) -> Result<(), ContextError> {
        self.set_value(&keys::flag(call_ref, flag.name()), "1".into(), CONTEXT_TTL)
            .await
    }

    pub async fn is_raised(
        &self,
        call_ref: &CallRef,
        flag: CallFlag,
    ) -> Result<bool, ContextError> {
        Ok(self
            .get_value(&keys::flag(call_ref, flag.name()))
            .await?
            .is_some())
    }

    pub async fn set_amd(
        &self,
        call_ref: &CallRef,
        verdict: AmdVerdict,
    ) -> Result<(), ContextError> {
        self.set_value(
            &keys::flag(call_ref, CallFlag::Amd.name()),
            verdict.as_str().into(),
            CONTEXT_TTL,
        )
        .await
    }

    /// The AMD verdict so far; an unreadable value is treated as none.
    pub async fn amd(&self, call_ref: &CallRef) -> Result<Option<AmdVerdict>, ContextError> {
        Ok(self
            .get_value(&keys::flag(call_ref, CallFlag::Amd.name()))
            .await?
            .as_deref()
            .and_then(AmdVerdict::parse))
    }
}

impl ContextStore {
    /// The phone agent's qualification (`record_qualification`), until the hang-up copies it
    /// into the call record. A later call replaces an earlier one (the agent corrected it).
    pub async fn set_qualification(
        &self,
        call_ref: &CallRef,
        q: &crate::call_record::Qualification,
    ) -> Result<(), ContextError> {
        let json = serde_json::to_string(q).map_err(|e| ContextError::Corrupt(e.to_string()))?;
        self.set_value(&keys::qualification(call_ref), json, CONTEXT_TTL)
            .await
    }

    pub async fn qualification(
        &self,
        call_ref: &CallRef,
    ) -> Result<Option<crate::call_record::Qualification>, ContextError> {
        match self.get_value(&keys::qualification(call_ref)).await? {
            None => Ok(None),
            Some(j) => serde_json::from_str(&j)
                .map(Some)
                .map_err(|e| ContextError::Corrupt(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn flags_are_per_call_and_typed() {
        let s = ContextStore::memory();
        let (a, b) = (CallRef::generate(), CallRef::generate());
        s.raise(&a, CallFlag::Answered).await.unwrap();
        assert!(s.is_raised(&a, CallFlag::Answered).await.unwrap());
        assert!(!s.is_raised(&b, CallFlag::Answered).await.unwrap());
        assert!(!s.is_raised(&a, CallFlag::StreamFailed).await.unwrap());
        assert_eq!(s.amd(&a).await.unwrap(), None);
        s.set_amd(&a, AmdVerdict::Machine).await.unwrap();
        assert_eq!(s.amd(&a).await.unwrap(), Some(AmdVerdict::Machine));
        for v in [AmdVerdict::Human, AmdVerdict::Machine, AmdVerdict::Fax] {
            assert_eq!(AmdVerdict::parse(v.as_str()), Some(v));
        }
    }
}
