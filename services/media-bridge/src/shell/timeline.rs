//! What was said, for the page's phone-leg timeline: `agent` (the model's audio transcript) and
//! `callee` (input transcription). One writer task per call keeps the order and keeps Redis
//! latency out of the audio loop; a full queue drops lines rather than stall the call.

use callway_core::call_context::{CallRef, ContextStore, TimelineEvent, TimelineKind};
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest line kept (the page shows a short log, not a transcript archive).
pub const MAX_LINE_CHARS: usize = 500;

const AGENT_DONE: &str = "response.output_audio_transcript.done";
const CALLEE_DONE: &str = "conversation.item.input_audio_transcription.completed";

pub struct Timeline {
    tx: mpsc::Sender<(TimelineKind, Option<String>)>,
}

impl Timeline {
    pub fn spawn(contexts: ContextStore, call_ref: CallRef, store_timeout: Duration) -> Self {
        let (tx, mut rx) = mpsc::channel::<(TimelineKind, Option<String>)>(64);
        tokio::spawn(async move {
            while let Some((kind, text)) = rx.recv().await {
                let ev = TimelineEvent::now(kind, text);
                match tokio::time::timeout(store_timeout, contexts.push_event(&call_ref, &ev)).await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "timeline not updated"),
                    Err(_) => tracing::warn!("timeline update timed out"),
                }
            }
        });
        Timeline { tx }
    }

    pub fn push(&self, kind: TimelineKind, text: Option<String>) {
        if self.tx.try_send((kind, text)).is_err() {
            tracing::debug!("timeline queue full: line dropped");
        }
    }

    /// Looks at an OpenAI server event; pushes the transcript if it is a finished line.
    pub fn observe_openai(&self, frame: &str) {
        if let Some((kind, text)) = transcript_line(frame) {
            self.push(kind, Some(text));
        }
    }
}

/// `(kind, text)` for the two transcript events, bounded. A cheap substring test first: most
/// frames are audio deltas and need no second parse.
pub fn transcript_line(frame: &str) -> Option<(TimelineKind, String)> {
    // Audio deltas, most of the traffic, say so first (as OpenAI writes them): no search.
    if frame.starts_with(r#"{"type":"response.output_audio.delta""#) {
        return None;
    }
    let kind = if frame.contains(AGENT_DONE) {
        TimelineKind::Agent
    } else if frame.contains(CALLEE_DONE) {
        TimelineKind::Callee
    } else {
        return None;
    };
    let v: serde_json::Value = serde_json::from_str(frame).ok()?;
    let expected = if kind == TimelineKind::Agent {
        AGENT_DONE
    } else {
        CALLEE_DONE
    };
    if v["type"] != expected {
        return None;
    }
    let text: String = v["transcript"]
        .as_str()?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LINE_CHARS)
        .collect();
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some((kind, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_two_transcript_events_only() {
        let a = r#"{"type":"response.output_audio_transcript.done","transcript":"Bonjour Marie"}"#;
        assert_eq!(
            transcript_line(a),
            Some((TimelineKind::Agent, "Bonjour Marie".into()))
        );
        let c = r#"{"type":"conversation.item.input_audio_transcription.completed","transcript":"Oui"}"#;
        assert_eq!(
            transcript_line(c),
            Some((TimelineKind::Callee, "Oui".into()))
        );
        let d = r#"{"type":"response.output_audio_transcript.delta","delta":"x"}"#;
        assert_eq!(transcript_line(d), None);
        let long = format!(
            r#"{{"type":"response.output_audio_transcript.done","transcript":"{}"}}"#,
            "a".repeat(2000)
        );
        assert_eq!(transcript_line(&long).unwrap().1.len(), MAX_LINE_CHARS);
    }
}
