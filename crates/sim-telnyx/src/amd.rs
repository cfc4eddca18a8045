//! Answering machine detection: which webhooks a dial's AMD mode sends, and when (relative to
//! the answer). Sans-IO.
//!
//! Premium (spec `CallRequest.answering_machine_detection`, and Telnyx's AMD guide): one
//! `call.machine.premium.detection.ended` with one of six results; if a beep is detected, also
//! `call.machine.premium.greeting.ended` `beep_detected` — and when the beep comes *before* the
//! verdict, that greeting webhook is the only one. A machine whose beep never comes gets
//! `greeting.ended` `no_beep_detected` once the beep wait times out.

use crate::config::AmdVerdict;
use std::time::Duration;

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

/// What the answerer is, as the detector will see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answerer {
    pub verdict: AmdVerdict,
    /// When a beep ends, from the answer (`None`: no beep).
    pub beep_at: Option<Duration>,
}

/// `analysis`: time to a verdict; `no_beep_after`: premium's beep wait for a machine.
pub(crate) fn schedule(
    mode: &str,
    who: Answerer,
    analysis: Duration,
    no_beep_after: Duration,
) -> Vec<AmdEvent> {
    let machine = who.verdict == AmdVerdict::Machine;
    match mode {
        "premium" => {
            const DETECTION: &str = "call.machine.premium.detection.ended";
            const GREETING: &str = "call.machine.premium.greeting.ended";
            match who.beep_at {
                Some(beep) if beep < analysis => vec![ev(beep, GREETING, "beep_detected")],
                Some(beep) => vec![
                    ev(analysis, DETECTION, who.verdict.premium_result()),
                    ev(beep, GREETING, "beep_detected"),
                ],
                None if machine => vec![
                    ev(analysis, DETECTION, "machine"),
                    ev(no_beep_after.max(analysis), GREETING, "no_beep_detected"),
                ],
                None => vec![ev(analysis, DETECTION, who.verdict.premium_result())],
            }
        }
        "detect" | "detect_beep" | "detect_words" | "greeting_end" => {
            let mut v = vec![ev(
                analysis,
                "call.machine.detection.ended",
                who.verdict.standard_result(),
            )];
            let listens_for_beep = mode != "detect";
            if let (true, true, Some(beep)) = (listens_for_beep, machine, who.beep_at) {
                v.push(ev(
                    beep.max(analysis),
                    "call.machine.greeting.ended",
                    "beep_detected",
                ));
            }
            v
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const S: Duration = Duration::from_secs(1);

    fn who(verdict: AmdVerdict, beep_at: Option<Duration>) -> Answerer {
        Answerer { verdict, beep_at }
    }

    #[test]
    fn premium_outcomes() {
        let h = schedule("premium", who(AmdVerdict::HumanResidence, None), S, 30 * S);
        assert_eq!(
            h,
            vec![ev(
                S,
                "call.machine.premium.detection.ended",
                "human_residence"
            )]
        );
        let m = schedule("premium", who(AmdVerdict::Machine, Some(5 * S)), S, 30 * S);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].result, "machine");
        assert_eq!(m[1].event_type, "call.machine.premium.greeting.ended");
        assert_eq!(m[1].result, "beep_detected");
        let early_beep = schedule("premium", who(AmdVerdict::Machine, Some(S)), 3 * S, 30 * S);
        assert_eq!(
            early_beep,
            vec![ev(
                S,
                "call.machine.premium.greeting.ended",
                "beep_detected"
            )]
        );
        let no_beep = schedule("premium", who(AmdVerdict::Machine, None), S, 30 * S);
        assert_eq!(
            no_beep[1],
            ev(
                30 * S,
                "call.machine.premium.greeting.ended",
                "no_beep_detected"
            )
        );
        for (v, r) in [
            (AmdVerdict::HumanBusiness, "human_business"),
            (AmdVerdict::Silence, "silence"),
            (AmdVerdict::FaxDetected, "fax_detected"),
            (AmdVerdict::NotSure, "not_sure"),
        ] {
            let s = schedule("premium", who(v, None), S, 30 * S);
            assert_eq!(s, vec![ev(S, "call.machine.premium.detection.ended", r)]);
        }
        assert!(schedule("disabled", who(AmdVerdict::Machine, Some(S)), S, S).is_empty());
        assert_eq!(
            schedule("detect", who(AmdVerdict::Machine, Some(S)), S, S).len(),
            1
        );
        assert_eq!(
            schedule("detect_beep", who(AmdVerdict::HumanResidence, None), S, S).len(),
            1
        );
        assert_eq!(
            schedule("detect_beep", who(AmdVerdict::Machine, Some(2 * S)), S, S).len(),
            2
        );
    }
}
