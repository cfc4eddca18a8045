//! The phone leg as the page shows it: a bounded list of events per call, kept a while after the
//! call so the page can show how it ended. The kinds are a closed list shared with the page
//! (`public/assets/js/timeline-kinds.js`; a test keeps the two equal).

use super::{keys, CallRef, ContextError, ContextStore};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long the phone-leg timeline stays readable by the page after the call.
pub const TIMELINE_TTL: Duration = Duration::from_secs(3600);
/// Longest timeline kept for one call (a long call has many turns; the page needs the recent ones).
pub const MAX_TIMELINE_EVENTS: usize = 200;

/// What happened on the phone leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimelineKind {
    /// The dial is being sent.
    Dialing,
    /// Telnyx placed the call (`call.initiated`).
    Ringing,
    Answered,
    /// An answering machine took the call.
    Voicemail,
    /// A line the phone agent said (`text`).
    Agent,
    /// A line the person said (`text`).
    Callee,
    /// The call is over; `text` is the outcome (`completed`, `voicemail`, `no_answer`, `busy`,
    /// `failed`).
    Ended,
}

impl TimelineKind {
    pub const ALL: [TimelineKind; 7] = [
        TimelineKind::Dialing,
        TimelineKind::Ringing,
        TimelineKind::Answered,
        TimelineKind::Voicemail,
        TimelineKind::Agent,
        TimelineKind::Callee,
        TimelineKind::Ended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Dialing => "dialing",
            TimelineKind::Ringing => "ringing",
            TimelineKind::Answered => "answered",
            TimelineKind::Voicemail => "voicemail",
            TimelineKind::Agent => "agent",
            TimelineKind::Callee => "callee",
            TimelineKind::Ended => "ended",
        }
    }
}

/// One step of the phone leg. `text` is what was said (`agent`/`callee`) or the outcome (`ended`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelineEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    pub kind: TimelineKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl TimelineEvent {
    pub fn now(kind: TimelineKind, text: Option<String>) -> Self {
        Self {
            at: chrono::Utc::now(),
            kind,
            text,
        }
    }
}

/// The phone leg's transcript, both sides, from its timeline (`agent` and `callee` lines).
pub fn phone_transcript(events: &[TimelineEvent]) -> Vec<crate::transcript::Turn> {
    use crate::transcript::{Speaker, Turn};
    events
        .iter()
        .filter_map(|e| {
            let speaker = match e.kind {
                TimelineKind::Agent => Speaker::Agent,
                TimelineKind::Callee => Speaker::Visitor,
                _ => return None,
            };
            Turn::new(speaker, e.text.as_deref()?)
        })
        .collect()
}

impl ContextStore {
    /// Appends to the call's timeline (kept after the call for the page, then expires).
    pub async fn push_event(
        &self,
        call_ref: &CallRef,
        event: &TimelineEvent,
    ) -> Result<(), ContextError> {
        let key = keys::timeline(call_ref);
        let json =
            serde_json::to_string(event).map_err(|e| ContextError::Corrupt(e.to_string()))?;
        match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::pipe()
                    .atomic()
                    .rpush(&key, json)
                    .ltrim(&key, -(MAX_TIMELINE_EVENTS as isize), -1)
                    .expire(&key, TIMELINE_TTL.as_secs() as i64)
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(())
            }
            ContextStore::Memory(m) => m.with(|map| {
                let entry = map
                    .entry(key)
                    .or_insert(("[]".into(), Instant::now() + TIMELINE_TTL));
                let mut list: Vec<serde_json::Value> =
                    serde_json::from_str(&entry.0).unwrap_or_default();
                list.push(serde_json::from_str(&json).unwrap_or_default());
                if list.len() > MAX_TIMELINE_EVENTS {
                    list.remove(0);
                }
                entry.0 = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
            }),
        }
    }

    pub async fn timeline(&self, call_ref: &CallRef) -> Result<Vec<TimelineEvent>, ContextError> {
        let key = keys::timeline(call_ref);
        let raw: Vec<String> = match self {
            ContextStore::Redis(c) => {
                let mut c = c.clone();
                redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut c)
                    .await?
            }
            ContextStore::Memory(m) => m.with(|map| {
                let list: Vec<serde_json::Value> = map
                    .get(&key)
                    .and_then(|(v, _)| serde_json::from_str(v).ok())
                    .unwrap_or_default();
                list.iter().map(|v| v.to_string()).collect()
            })?,
        };
        raw.iter()
            .map(|j| serde_json::from_str(j).map_err(|e| ContextError::Corrupt(e.to_string())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's list of kinds (`TIMELINE_KINDS`) is the enum's, in the same order.
    #[test]
    fn the_page_knows_every_kind_and_no_other() {
        let js = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../public/assets/js/timeline-kinds.js"
        ))
        .expect("the page's timeline-kinds.js");
        let list = js
            .split_once("TIMELINE_KINDS = Object.freeze([")
            .and_then(|(_, rest)| rest.split_once("])"))
            .map(|(list, _)| list)
            .expect("TIMELINE_KINDS = Object.freeze([...]) in timeline-kinds.js");
        let page: Vec<&str> = list
            .split(',')
            .map(|k| k.trim().trim_matches('\''))
            .filter(|k| !k.is_empty())
            .collect();
        let ours: Vec<&str> = TimelineKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(page, ours);
        for k in TimelineKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[tokio::test]
    async fn the_timeline_keeps_its_latest_events() {
        let s = ContextStore::memory();
        let r = CallRef::generate();
        for i in 0..(MAX_TIMELINE_EVENTS + 5) {
            s.push_event(
                &r,
                &TimelineEvent::now(TimelineKind::Agent, Some(format!("{i}"))),
            )
            .await
            .unwrap();
        }
        let t = s.timeline(&r).await.unwrap();
        assert_eq!(t.len(), MAX_TIMELINE_EVENTS);
        assert_eq!(
            t.last().unwrap().text.as_deref(),
            Some(format!("{}", MAX_TIMELINE_EVENTS + 4).as_str())
        );
    }
}
