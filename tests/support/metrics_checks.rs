//! What one whole journey (a session, a lead, a callback answered and ended) must show in the
//! metrics, as on-call reads them: names and units of the contract, the counts of that journey,
//! and nothing personal or per-call in any label.

use callway_testkit::otlp::{OtlpReceiver, RecordedPoint};
use std::time::Duration;

const SERVICE: &str = "callway";

fn unit_of(points: &[RecordedPoint], name: &str) -> String {
    points
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.unit.clone())
        .unwrap_or_else(|| panic!("no {name} exported"))
}

pub async fn assert_journey_metrics(receiver: &OtlpReceiver, outcome: &str) {
    // The flush exported them; give the receiver a moment to store the request.
    let mut points = Vec::new();
    for _ in 0..50 {
        points = receiver.points();
        if points.iter().any(|p| p.name == "callway.callbacks.ended") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v = |name: &str, labels: &[(&str, &str)]| {
        receiver
            .latest(SERVICE, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} exported"))
    };

    // The funnel, one of each.
    assert_eq!(v("callway.web.sessions.started", &[]), 1.0);
    assert_eq!(v("callway.leads.saved", &[]), 1.0);
    assert_eq!(v("callway.callbacks.requested", &[]), 1.0);
    assert_eq!(v("callway.callbacks.dialled", &[]), 1.0);
    assert_eq!(v("callway.callbacks.answered", &[]), 1.0);
    assert_eq!(v("callway.callbacks.ended", &[("outcome", outcome)]), 1.0);
    assert!(v("callway.webhooks.received", &[("result", "verified")]) >= 3.0);
    // Live gauges are back to zero once everything ended; the bridge's limit is its setting.
    assert_eq!(v("callway.web.sessions.active", &[]), 0.0);
    assert_eq!(v("callway.bridge.calls.active", &[]), 0.0);
    assert!(v("callway.bridge.calls.limit", &[]) >= 1.0);
    // Latencies: frames both ways through the bridge, at least one phone turn, the session
    // request among the HTTP routes (the pattern, not the path).
    assert!(
        v(
            "callway.bridge.frame.added_latency",
            &[("direction", "to_openai")]
        ) > 10.0
    );
    assert!(
        v(
            "callway.bridge.frame.added_latency",
            &[("direction", "to_telnyx")]
        ) > 10.0
    );
    assert!(v("callway.bridge.voice_to_voice.latency", &[]) >= 1.0);
    assert_eq!(
        v(
            "http.server.request.duration",
            &[
                ("http.route", "/api/realtime/session"),
                ("http.request.method", "POST"),
                ("http.response.status_code", "201"),
            ],
        ),
        1.0
    );
    for (name, unit) in [
        ("http.server.request.duration", "s"),
        ("callway.bridge.frame.added_latency", "s"),
        ("callway.bridge.voice_to_voice.latency", "s"),
        ("callway.web.sessions.started", "{session}"),
        ("callway.leads.saved", "{lead}"),
        ("callway.callbacks.ended", "{call}"),
        ("callway.bridge.calls.active", "{call}"),
        ("callway.webhooks.received", "{webhook}"),
    ] {
        assert_eq!(unit_of(&points, name), unit, "{name}");
    }
    let counters = points
        .iter()
        .filter(|p| p.name.starts_with("callway.callbacks.") || p.name == "callway.leads.saved");
    for p in counters {
        assert!(p.kind == "sum" && p.monotonic, "{} is a counter", p.name);
    }

    // No number, no id, no raw path in any label.
    for p in &points {
        for (k, value) in &p.attributes {
            let digits: String = value.chars().filter(char::is_ascii_digit).collect();
            assert!(
                !digits.contains("612345678"),
                "{}: {k}={value} carries the number",
                p.name
            );
            for id in ["cx_", "ws_", "rtc_", "st_", "v3:", "lead"] {
                assert!(!value.contains(id), "{}: {k}={value} carries an id", p.name);
            }
        }
    }
    eprintln!(
        "journey metrics: {} points over {} instruments",
        points.len(),
        points
            .iter()
            .map(|p| p.name.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
}
