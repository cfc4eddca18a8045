//! Leads: the people who asked to be called back, with the consent they gave.

use crate::phone::PhoneE164;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Opaque lead identifier (a UUID, as in the `leads.id` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeadId(uuid::Uuid);

impl LeadId {
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    pub fn parse(s: &str) -> Option<Self> {
        uuid::Uuid::parse_str(s.trim()).ok().map(Self)
    }
}

impl Default for LeadId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A first or last name as the visitor gave it: trimmed, 1 to 100 characters, letters with the
/// usual joiners (space, hyphen, apostrophe, dot). Digits and symbols are refused.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name longer than {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("name contains characters that are not letters")]
    BadCharacters,
}

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Err(NameError::Empty);
        }
        if collapsed.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        let ok = collapsed
            .chars()
            .all(|c| c.is_alphabetic() || matches!(c, ' ' | '-' | '\'' | '’' | '.'));
        if !ok || !collapsed.chars().any(char::is_alphabetic) {
            return Err(NameError::BadCharacters);
        }
        Ok(Self(collapsed))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Names are personal data: keep them out of Debug output.
impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.0.chars().next().unwrap_or('?');
        write!(f, "PersonName({first}…)")
    }
}

/// What the visitor agreed to, and when. Stored with the lead (RGPD: proof of consent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub at: DateTime<Utc>,
    /// Version of the consent wording the agent read out (see `prompts::CONSENT_WORDING`).
    pub wording_version: String,
}

/// The callback's life cycle, as stored in `leads.callback_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    Pending,
    Dialing,
    Ringing,
    Answered,
    Completed,
    Voicemail,
    NoAnswer,
    Busy,
    Failed,
}

impl CallbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStatus::Pending => "pending",
            CallbackStatus::Dialing => "dialing",
            CallbackStatus::Ringing => "ringing",
            CallbackStatus::Answered => "answered",
            CallbackStatus::Completed => "completed",
            CallbackStatus::Voicemail => "voicemail",
            CallbackStatus::NoAnswer => "no_answer",
            CallbackStatus::Busy => "busy",
            CallbackStatus::Failed => "failed",
        }
    }
}

/// A validated lead ready to be stored.
#[derive(Debug, Clone)]
pub struct NewLead {
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub phone: PhoneE164,
    pub consent: Consent,
    pub source: String,
    /// The web session that created it; `trigger_call` only accepts leads of its own session.
    pub web_session_id: String,
}

/// A stored lead.
#[derive(Debug, Clone)]
pub struct Lead {
    pub id: LeadId,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub phone: PhoneE164,
    pub consent: Consent,
    pub source: String,
    pub web_session_id: String,
    pub created_at: DateTime<Utc>,
    pub summary: Option<String>,
    pub callback_status: CallbackStatus,
    /// When its callback was claimed (just before the dial); `None` while none was placed.
    pub callback_requested_at: Option<DateTime<Utc>>,
    /// Call attempts claimed so far.
    pub callback_attempts: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_bounded_and_letters_only() {
        assert_eq!(
            PersonName::parse("  Jean   Pierre ").unwrap().as_str(),
            "Jean Pierre"
        );
        assert_eq!(
            PersonName::parse("N'Diaye-Lefèvre").unwrap().as_str(),
            "N'Diaye-Lefèvre"
        );
        assert_eq!(PersonName::parse("Zoë").unwrap().as_str(), "Zoë");
        assert_eq!(PersonName::parse("   "), Err(NameError::Empty));
        assert_eq!(PersonName::parse("R2D2"), Err(NameError::BadCharacters));
        assert_eq!(PersonName::parse("<script>"), Err(NameError::BadCharacters));
        assert_eq!(PersonName::parse("--"), Err(NameError::BadCharacters));
        assert_eq!(PersonName::parse(&"a".repeat(101)), Err(NameError::TooLong));
        assert!(!format!("{:?}", PersonName::parse("Marie").unwrap()).contains("Marie"));
    }

    #[test]
    fn lead_ids_parse_only_uuids() {
        let id = LeadId::new();
        assert_eq!(LeadId::parse(&id.to_string()), Some(id));
        assert_eq!(LeadId::parse("1; drop table"), None);
    }
}
