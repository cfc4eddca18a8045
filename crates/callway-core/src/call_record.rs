//! What the business keeps of each call attempt: who, when (dialled, answered, ended), how it
//! ended, what answering-machine detection said, the phone-leg transcript (both sides, with the
//! consent the visitor gave on the web), and the qualification the phone agent recorded. One
//! record per call ref; `supabase/migrations/…_call_attempts.sql` holds the table.

use crate::lead::{CallbackStatus, LeadId};
use crate::transcript::Turn;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallDirection {
    Outbound,
    Inbound,
}

/// One call attempt, as stored.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct CallRecord {
    pub call_ref: String,
    pub lead_id: LeadId,
    pub attempt: u8,
    pub direction: CallDirection,
    #[serde(default)]
    pub telnyx_call_control_id: Option<String>,
    #[serde(default)]
    pub telnyx_call_session_id: Option<String>,
    pub dialled_at: DateTime<Utc>,
    #[serde(default)]
    pub answered_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub outcome: Option<CallbackStatus>,
    /// `human`, `machine`, `fax` (premium AMD's verdict), when there was one.
    #[serde(default)]
    pub amd_result: Option<String>,
    #[serde(default)]
    pub hangup_cause: Option<String>,
    #[serde(default)]
    pub duration_secs: Option<i64>,
    #[serde(default)]
    pub transcript: Vec<Turn>,
    #[serde(default)]
    pub qualification: Option<Qualification>,
    pub consent_version: String,
}

impl std::fmt::Debug for CallRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallRecord({}, lead {})", self.call_ref, self.lead_id)
    }
}

impl CallRecord {
    /// A record for a dial being placed now.
    pub fn dialled(call_ref: &str, lead_id: LeadId, attempt: u8, consent_version: &str) -> Self {
        CallRecord {
            call_ref: call_ref.to_owned(),
            lead_id,
            attempt,
            direction: CallDirection::Outbound,
            telnyx_call_control_id: None,
            telnyx_call_session_id: None,
            dialled_at: Utc::now(),
            answered_at: None,
            ended_at: None,
            outcome: None,
            amd_result: None,
            hangup_cause: None,
            duration_secs: None,
            transcript: Vec::new(),
            qualification: None,
            consent_version: consent_version.to_owned(),
        }
    }
}

/// The fields an event sets on a record (the others stay as they are).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CallUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telnyx_call_control_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub telnyx_call_session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<CallbackStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amd_result: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hangup_cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Vec<Turn>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qualification: Option<Qualification>,
}

impl CallUpdate {
    /// Applies the set fields to `r` (the embedded store's PATCH).
    pub fn apply(self, r: &mut CallRecord) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { r.$f = Some(v); } )* };
        }
        set!(
            telnyx_call_control_id,
            telnyx_call_session_id,
            answered_at,
            ended_at,
            outcome,
            amd_result,
            hangup_cause,
            duration_secs,
            qualification
        );
        if let Some(t) = self.transcript {
            r.transcript = t;
        }
    }
}

/// How interested the person is, as the phone agent judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterestLevel {
    High,
    Medium,
    Low,
    None,
}

/// What happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// A meeting with a salesperson (`preferred_slot` when one was given).
    Meeting,
    /// Call again later (`preferred_slot`: when).
    Callback,
    /// Send written information.
    SendInfo,
    /// Nothing: not interested, or asked not to be contacted.
    None,
}

/// The structured qualification the phone agent records with `record_qualification`, validated
/// here: bounded free text with control characters removed, closed enums, a slot in the future
/// within 60 days. The model's arguments are input like any other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Qualification {
    pub activity: String,
    pub call_volume: String,
    pub main_need: String,
    pub interest_level: InterestLevel,
    pub next_step: NextStep,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_slot: Option<DateTime<Utc>>,
}

/// Why the model's arguments were refused (said back to it in French so it can correct).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QualificationError {
    #[error("arguments illisibles : {0}")]
    Unreadable(String),
    #[error("le champ {0} est vide ou trop long")]
    Text(&'static str),
    #[error("preferred_slot doit être une date ISO 8601 avec fuseau, dans les 60 prochains jours")]
    Slot,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQualification {
    activity: String,
    call_volume: String,
    main_need: String,
    interest_level: InterestLevel,
    next_step: NextStep,
    #[serde(default)]
    preferred_slot: Option<String>,
}

fn text(field: &'static str, s: &str, max: usize) -> Result<String, QualificationError> {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if clean.is_empty() || clean.chars().count() > max {
        return Err(QualificationError::Text(field));
    }
    Ok(clean)
}

impl Qualification {
    /// Parses the tool's JSON arguments at `now`.
    pub fn parse(arguments: &str, now: DateTime<Utc>) -> Result<Self, QualificationError> {
        if arguments.len() > 4096 {
            return Err(QualificationError::Unreadable("trop long".into()));
        }
        let raw: RawQualification = serde_json::from_str(arguments)
            .map_err(|e| QualificationError::Unreadable(crate::json_error::describe(&e)))?;
        let preferred_slot = match raw.preferred_slot.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => {
                let at = DateTime::parse_from_rfc3339(s)
                    .map_err(|_| QualificationError::Slot)?
                    .with_timezone(&Utc);
                if at <= now || at > now + chrono::Duration::days(60) {
                    return Err(QualificationError::Slot);
                }
                Some(at)
            }
        };
        Ok(Qualification {
            activity: text("activity", &raw.activity, 120)?,
            call_volume: text("call_volume", &raw.call_volume, 60)?,
            main_need: text("main_need", &raw.main_need, 300)?,
            interest_level: raw.interest_level,
            next_step: raw.next_step,
            preferred_slot,
        })
    }
}

/// The phone agent's `record_qualification` tool (GA function tool shape).
pub fn record_qualification_tool() -> serde_json::Value {
    serde_json::json!({
        "type": "function",
        "name": RECORD_QUALIFICATION_TOOL,
        "description": "Enregistre la qualification du prospect pour l'équipe commerciale. Appelle cet outil une fois, \
            avant de dire au revoir, avec ce que la personne a dit (jamais de numéro ni de donnée bancaire).",
        "parameters": {
            "type": "object",
            "properties": {
                "activity": {"type": "string", "description": "Son activité (ex. cabinet dentaire)."},
                "call_volume": {"type": "string", "description": "Combien d'appels elle reçoit (ex. 40 par jour)."},
                "main_need": {"type": "string", "description": "Son besoin principal, en une phrase."},
                "interest_level": {"type": "string", "enum": ["high", "medium", "low", "none"]},
                "next_step": {"type": "string", "enum": ["meeting", "callback", "send_info", "none"]},
                "preferred_slot": {"type": "string", "description": "Créneau souhaité, date ISO 8601 avec fuseau (ex. 2026-12-01T10:00:00+01:00), si elle en a donné un."}
            },
            "required": ["activity", "call_volume", "main_need", "interest_level", "next_step"],
            "additionalProperties": false
        }
    })
}

pub const RECORD_QUALIFICATION_TOOL: &str = "record_qualification";

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-30T09:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_qualification_is_validated_and_cleaned() {
        let q = Qualification::parse(
            r#"{"activity":"Cabinet\u0007 dentaire","call_volume":"40 par jour","main_need":"Filtrer  les appels",
                "interest_level":"high","next_step":"meeting","preferred_slot":"2026-12-01T10:00:00+01:00"}"#,
            now(),
        )
        .unwrap();
        assert_eq!(q.activity, "Cabinet dentaire");
        assert_eq!(q.main_need, "Filtrer les appels");
        assert_eq!(q.interest_level, InterestLevel::High);
        assert_eq!(
            q.preferred_slot,
            Some("2026-12-01T09:00:00Z".parse().unwrap())
        );
        for bad in [
            r#"{"activity":"","call_volume":"x","main_need":"y","interest_level":"high","next_step":"none"}"#,
            r#"{"activity":"a","call_volume":"x","main_need":"y","interest_level":"very","next_step":"none"}"#,
            r#"{"activity":"a","call_volume":"x","main_need":"y","interest_level":"low","next_step":"none","phone":"0612"}"#,
            r#"{"activity":"a","call_volume":"x","main_need":"y","interest_level":"low","next_step":"callback","preferred_slot":"demain 10h"}"#,
            r#"{"activity":"a","call_volume":"x","main_need":"y","interest_level":"low","next_step":"callback","preferred_slot":"2026-11-29T10:00:00Z"}"#,
            r#"{"activity":"a","call_volume":"x","main_need":"y","interest_level":"low","next_step":"callback","preferred_slot":"2027-06-01T10:00:00Z"}"#,
            "not json",
        ] {
            assert!(Qualification::parse(bad, now()).is_err(), "{bad}");
        }
        let long = format!(
            r#"{{"activity":"{}","call_volume":"x","main_need":"y","interest_level":"low","next_step":"none"}}"#,
            "a".repeat(121)
        );
        assert_eq!(
            Qualification::parse(&long, now()),
            Err(QualificationError::Text("activity"))
        );
    }

    #[test]
    fn an_update_sets_only_its_fields() {
        let mut r = CallRecord::dialled("cx_a", LeadId::new(), 1, "v3");
        CallUpdate {
            outcome: Some(CallbackStatus::Completed),
            duration_secs: Some(42),
            ..Default::default()
        }
        .apply(&mut r);
        assert_eq!(r.outcome, Some(CallbackStatus::Completed));
        assert_eq!(r.duration_secs, Some(42));
        assert!(r.answered_at.is_none());
    }
}
