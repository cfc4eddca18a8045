//! Answering machine detection: which webhooks a mode produces for a callee, and when
//! (offsets from the answer). Sans-IO.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answerer {
    Human,
    Machine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AmdEvent {
    pub after: Duration,
    pub event_type: &'static str,
    pub result: &'static str,
}

fn ev(after: Duration, event_type: &'static str, result: &'static str) -> AmdEvent {
    AmdEvent {
        after,
        event_type,
        result,
    }
}

/// `analysis`: time to a verdict; `beep_at`: when a machine's beep sounds (after its greeting).
pub(crate) fn schedule(
    mode: &str,
    who: Answerer,
    analysis: Duration,
    beep_at: Duration,
) -> Vec<AmdEvent> {
    let standard = |beep: bool| {
        let mut v = vec![ev(
            analysis,
            "call.machine.detection.ended",
            if who == Answerer::Human {
                "human"
            } else {
                "machine"
            },
        )];
        if beep && who == Answerer::Machine {
            v.push(ev(
                beep_at.max(analysis),
                "call.machine.greeting.ended",
                "beep_detected",
            ));
        }
        v
    };
    match (mode, who) {
        ("premium", Answerer::Human) => {
            vec![ev(
                analysis,
                "call.machine.premium.detection.ended",
                "human_residence",
            )]
        }
        // Beep before the verdict: only greeting.ended; beep after: both (AMD docs).
        ("premium", Answerer::Machine) if beep_at < analysis => {
            vec![ev(
                beep_at,
                "call.machine.premium.greeting.ended",
                "beep_detected",
            )]
        }
        ("premium", Answerer::Machine) => vec![
            ev(analysis, "call.machine.premium.detection.ended", "machine"),
            ev(
                beep_at,
                "call.machine.premium.greeting.ended",
                "beep_detected",
            ),
        ],
        ("detect", _) => standard(false),
        ("detect_beep" | "detect_words" | "greeting_end", _) => standard(true),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn premium_outcomes() {
        let h = schedule("premium", Answerer::Human, S, 5 * S);
        assert_eq!(
            h,
            vec![ev(
                S,
                "call.machine.premium.detection.ended",
                "human_residence"
            )]
        );
        let m = schedule("premium", Answerer::Machine, S, 5 * S);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].result, "machine");
        assert_eq!(m[1].event_type, "call.machine.premium.greeting.ended");
        let early_beep = schedule("premium", Answerer::Machine, 3 * S, S);
        assert_eq!(
            early_beep,
            vec![ev(
                S,
                "call.machine.premium.greeting.ended",
                "beep_detected"
            )]
        );
        assert!(schedule("disabled", Answerer::Machine, S, S).is_empty());
        assert_eq!(schedule("detect", Answerer::Machine, S, S).len(), 1);
        assert_eq!(schedule("detect_beep", Answerer::Human, S, S).len(), 1);
    }
}
