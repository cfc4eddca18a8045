//! The web conversation as the server heard it (both sides' transcripts from the sideband): what
//! the phone agent continues from, and what the business reads as the lead's summary. Visitor words
//! are user content: they are replayed as conversation items, never as instructions.

use serde::{Deserialize, Serialize};

/// Longest text of one turn we keep.
pub const MAX_TURN_CHARS: usize = 1_000;
/// Most turns we keep (the oldest are dropped first).
pub const MAX_TURNS: usize = 80;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Visitor,
    Agent,
}

impl Speaker {
    fn label(self) -> &'static str {
        match self {
            Speaker::Visitor => "Visiteur",
            Speaker::Agent => "Agent",
        }
    }
}

/// One finished utterance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub speaker: Speaker,
    pub text: String,
}

impl Turn {
    /// A turn from a transcript event: trimmed, control characters removed, bounded. `None` for
    /// an empty transcript (silence, a failed transcription).
    pub fn new(speaker: Speaker, text: &str) -> Option<Self> {
        let text: String = text
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TURN_CHARS)
            .collect();
        let text = text.trim();
        (!text.is_empty()).then(|| Turn {
            speaker,
            text: text.to_owned(),
        })
    }
}

/// Keeps the latest [`MAX_TURNS`] turns.
pub fn bounded(mut turns: Vec<Turn>) -> Vec<Turn> {
    if turns.len() > MAX_TURNS {
        turns.drain(..turns.len() - MAX_TURNS);
    }
    turns
}

/// The lead's summary for the business: the conversation as lines, the latest kept when it is too
/// long (the end of a conversation is where the need and the request are).
pub fn summary(turns: &[Turn], max_chars: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut used = 0usize;
    for t in turns.iter().rev() {
        let line = format!("{} : {}", t.speaker.label(), t.text);
        let n = line.chars().count() + 1;
        if used + n > max_chars {
            break;
        }
        used += n;
        lines.push(line);
    }
    lines.reverse();
    lines.join("\n")
}

/// The turns back from a [`summary`] (a retry's phone agent continues from what the lead kept;
/// turns have no line breaks, so each line is one turn). Unreadable lines are skipped.
pub fn from_summary(summary: &str) -> Vec<Turn> {
    summary
        .lines()
        .filter_map(|line| {
            let (label, text) = line.split_once(" : ")?;
            let speaker = match label {
                "Agent" => Speaker::Agent,
                "Visiteur" => Speaker::Visitor,
                _ => return None,
            };
            Turn::new(speaker, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_cleaned_bounded_and_empty_ones_dropped() {
        assert_eq!(Turn::new(Speaker::Visitor, "  \u{7} "), None);
        let t = Turn::new(Speaker::Agent, &"é".repeat(5_000)).unwrap();
        assert_eq!(t.text.chars().count(), MAX_TURN_CHARS);
        let many = (0..200)
            .map(|i| Turn::new(Speaker::Visitor, &format!("t{i}")).unwrap())
            .collect();
        let kept = bounded(many);
        assert_eq!(kept.len(), MAX_TURNS);
        assert_eq!(kept[0].text, "t120");
    }

    #[test]
    fn the_summary_keeps_the_end_of_the_conversation() {
        let turns = vec![
            Turn::new(Speaker::Agent, "Bonjour, je suis l'agent IA de Callway.").unwrap(),
            Turn::new(
                Speaker::Visitor,
                "Je suis dentiste, cinquante appels par jour.",
            )
            .unwrap(),
            Turn::new(Speaker::Agent, "Je vous rappelle ?").unwrap(),
        ];
        let all = summary(&turns, 1_000);
        assert_eq!(
            all,
            "Agent : Bonjour, je suis l'agent IA de Callway.\nVisiteur : Je suis dentiste, cinquante appels par jour.\nAgent : Je vous rappelle ?"
        );
        let short = summary(&turns, 80);
        assert!(short.ends_with("Agent : Je vous rappelle ?"));
        assert_eq!(
            from_summary(&all),
            turns,
            "the summary reads back into the same turns"
        );
        assert!(!short.contains("Bonjour"));
    }
}
