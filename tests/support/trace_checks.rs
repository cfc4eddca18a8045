//! What "one trace per journey" means, checked on the spans an OTLP receiver recorded: the
//! journey's trace holds the web session request, both tools, the Telnyx dial, the webhooks, the bridge
//! call and its phone turns, linked as the design says, with no phone number in clear.

use callway_testkit::otlp::RecordedSpan;
use std::collections::BTreeMap;

/// Span names a full journey must produce, in its one trace.
pub const JOURNEY_SPANS: [&str; 8] = [
    "web.session_create",
    "web.sideband",
    "tool.save_lead",
    "tool.trigger_call",
    "telnyx.dial",
    "telnyx.webhook",
    "bridge.call",
    "bridge.turn",
];

/// Fragments of the test number (+33 6 12 34 56 78) that must never appear in a span.
const PHONE_FRAGMENTS: [&str; 3] = ["612345678", "12 34 56", "06 12"];

fn named<'a>(spans: &'a [RecordedSpan], name: &str) -> Vec<&'a RecordedSpan> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// True if `span` descends from `ancestor` through the recorded parent links.
fn descends(spans: &[RecordedSpan], span: &RecordedSpan, ancestor: &RecordedSpan) -> bool {
    let mut cur = span.parent_span_id.clone();
    for _ in 0..64 {
        if cur.is_empty() {
            return false;
        }
        if cur == ancestor.span_id {
            return true;
        }
        match spans.iter().find(|s| s.span_id == cur) {
            Some(p) => cur = p.parent_span_id.clone(),
            None => return false,
        }
    }
    false
}

/// True once the receiver holds a whole journey (exporters batch, so spans arrive late).
pub fn journey_complete(spans: &[RecordedSpan]) -> bool {
    JOURNEY_SPANS
        .iter()
        .all(|w| spans.iter().any(|s| s.name == *w))
        && spans
            .iter()
            .any(|s| s.name == "telnyx.webhook" && event(s) == Some("call.hangup"))
}

fn event(s: &RecordedSpan) -> Option<&str> {
    s.attributes.get("event").map(String::as_str)
}

/// Asserts the journey's trace (the one holding `tool.trigger_call`) and returns its spans as
/// "name (service) × count" lines, for the test's output.
pub fn assert_one_trace_per_journey(spans: &[RecordedSpan]) -> String {
    let listing: Vec<(&str, &str, &str)> = spans
        .iter()
        .map(|s| (s.service.as_str(), s.name.as_str(), s.trace_id.as_str()))
        .collect();
    let diag = format!("spans received: {listing:#?}");
    for w in JOURNEY_SPANS {
        assert!(!named(spans, w).is_empty(), "no {w} span\n{diag}");
    }
    let triggers = named(spans, "tool.trigger_call");
    assert_eq!(triggers.len(), 1, "one callback per journey\n{diag}");
    let trace = triggers[0].trace_id.clone();
    let journey: Vec<RecordedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .cloned()
        .collect();
    for w in JOURNEY_SPANS {
        assert!(
            journey.iter().any(|s| s.name == w),
            "{w} is not in the journey's trace\n{diag}"
        );
    }
    let trigger = named(&journey, "tool.trigger_call")[0];
    let mint = named(&journey, "web.session_create")[0];
    for name in ["tool.save_lead", "tool.trigger_call"] {
        assert!(
            descends(&journey, named(&journey, name)[0], mint),
            "{name} hangs under the session request (through the sideband)\n{diag}"
        );
    }
    assert!(
        descends(&journey, named(&journey, "telnyx.dial")[0], trigger),
        "the dial hangs under trigger_call\n{diag}"
    );
    let webhooks = named(&journey, "telnyx.webhook");
    let events: Vec<&str> = webhooks.iter().filter_map(|s| event(s)).collect();
    for e in ["call.initiated", "call.answered", "call.hangup"] {
        assert!(
            events.contains(&e),
            "webhook {e} in the trace: {events:?}\n{diag}"
        );
    }
    for w in &webhooks {
        assert_eq!(
            w.parent_span_id, trigger.span_id,
            "webhooks hang under trigger_call\n{diag}"
        );
    }
    let bridge = named(&journey, "bridge.call")[0];
    assert!(
        descends(&journey, bridge, trigger),
        "the bridge call hangs under trigger_call\n{diag}"
    );
    let turns = named(&journey, "bridge.turn");
    assert!(
        turns.iter().all(|t| descends(&journey, t, bridge)),
        "{diag}"
    );
    assert!(
        turns.iter().any(|t| t
            .attributes
            .get("callway.voice_to_voice_ms")
            .and_then(|v| v.parse::<f64>().ok())
            .is_some()),
        "phone turns carry the voice-to-voice latency\n{diag}"
    );
    for s in spans {
        for (k, v) in &s.attributes {
            for digits in PHONE_FRAGMENTS {
                assert!(
                    !v.contains(digits),
                    "unmasked number in {}.{k} = {v}",
                    s.name
                );
            }
        }
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for s in &journey {
        *counts
            .entry(format!("{} ({})", s.name, s.service))
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k} × {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
