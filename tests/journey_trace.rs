//! One trace per journey: the token request starts it, the page echoes its `traceparent` on the
//! tool calls, `trigger_call` stores it in the call context, and the Telnyx webhooks and the media
//! bridge pick it up from there. Spans are exported over OTLP/HTTP to a receiver this test runs,
//! and asserted with their parent links. The all-in-one launcher runs in sandbox (simulated
//! OpenAI and Telnyx, embedded lead store); the tool calls are made as the page makes them.

use callway_core::Settings;
use callway_testkit::otlp::{OtlpReceiver, RecordedSpan};
use serde_json::{json, Value};
use std::time::Duration;

const PHONE_DIGITS: [&str; 3] = ["612345678", "12 34 56", "06 12"];

fn by_name<'a>(spans: &'a [RecordedSpan], name: &str) -> Vec<&'a RecordedSpan> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_journey_is_one_trace_from_token_to_hang_up() {
    callway_testkit::install_crypto_provider();
    let receiver = OtlpReceiver::start().await;
    let _telemetry =
        callway_core::telemetry::init("callway", Some(&receiver.endpoint), Some("info"));
    let dir = tempfile::tempdir().unwrap();
    let root = callway_testkit::workspace_root();
    let env = vec![
        (
            "CALLWAY_DATA_DIR".to_owned(),
            dir.path().to_string_lossy().into_owned(),
        ),
        (
            "CALLWAY_STATIC_DIR".to_owned(),
            root.join("public").to_string_lossy().into_owned(),
        ),
    ];
    let settings = Settings::from_sources(None, env).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let site = callway::site::start(settings, listener)
        .await
        .expect("site");
    let server = site.server.handle();
    tokio::spawn(site.server);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let url = |p: &str| format!("{}/{p}", site.url);

    let token: Value = http
        .post(url("api/realtime-token"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let traceparent = token["traceparent"]
        .as_str()
        .expect("the token response carries the journey's trace context")
        .to_owned();
    let bearer = format!("Bearer {}", token["session_token"].as_str().unwrap());
    let tool = |name: &str, body: Value| {
        http.post(url(&format!("api/tools/{name}")))
            .header("authorization", &bearer)
            .header("traceparent", &traceparent)
            .json(&body)
            .send()
    };
    let saved: Value = tool(
        "save_lead",
        json!({"first_name": "Marie", "last_name": "Dupont", "phone": "06 12 34 56 78", "consent": true}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let call = tool(
        "trigger_call",
        json!({"lead_id": saved["lead_id"], "summary": "Cabinet dentaire, veut automatiser les rappels."}),
    )
    .await
    .unwrap();
    assert_eq!(call.status(), 200);
    let call: Value = call.json().await.unwrap();
    let call_id = call["call_id"].as_str().unwrap().to_owned();

    // The sandbox callee answers, talks with the agent through the bridge, and hangs up.
    let mut timeline = Value::Null;
    for _ in 0..300 {
        timeline = http
            .get(url(&format!("api/calls/{call_id}/events")))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if timeline["ended"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(timeline["ended"], true, "the call ends: {timeline:#}");

    let wanted = [
        "token.mint",
        "tool.save_lead",
        "tool.trigger_call",
        "telnyx.dial",
        "telnyx.webhook",
        "bridge.call",
        "bridge.turn",
    ];
    let spans = receiver
        .wait_until(Duration::from_secs(20), |spans| {
            wanted.iter().all(|w| spans.iter().any(|s| s.name == *w))
                && spans
                    .iter()
                    .filter(|s| s.name == "telnyx.webhook")
                    .any(|s| s.attributes.get("event").map(String::as_str) == Some("call.hangup"))
        })
        .await;
    let names: Vec<(&str, &str)> = spans
        .iter()
        .map(|s| (s.name.as_str(), s.trace_id.as_str()))
        .collect();
    let diag = format!("timeline: {timeline:#}\nspans: {names:#?}");
    for w in wanted {
        assert!(!by_name(&spans, w).is_empty(), "no {w} span\n{diag}");
    }

    let mint = by_name(&spans, "token.mint")[0];
    let trace = mint.trace_id.clone();
    assert_eq!(&traceparent[3..35], trace, "{diag}");
    let journey: Vec<RecordedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == trace)
        .cloned()
        .collect();
    for w in wanted {
        assert!(
            journey.iter().any(|s| s.name == w),
            "{w} is not in the journey's trace\n{diag}"
        );
    }
    let trigger = by_name(&journey, "tool.trigger_call")[0];
    for name in ["tool.save_lead", "tool.trigger_call"] {
        let s = by_name(&journey, name)[0];
        assert!(
            descends(&journey, s, mint),
            "{name} under token.mint\n{diag}"
        );
    }
    assert!(
        descends(&journey, by_name(&journey, "telnyx.dial")[0], trigger),
        "{diag}"
    );
    let webhooks = by_name(&journey, "telnyx.webhook");
    let events: Vec<&str> = webhooks
        .iter()
        .filter_map(|s| s.attributes.get("event").map(String::as_str))
        .collect();
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
    let bridge = by_name(&journey, "bridge.call")[0];
    assert!(descends(&journey, bridge, trigger), "{diag}");
    let turns = by_name(&journey, "bridge.turn");
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

    // Phone numbers never leave in clear, in any attribute of any span.
    for s in &spans {
        for (k, v) in &s.attributes {
            for digits in PHONE_DIGITS {
                assert!(!v.contains(digits), "{}.{k} = {v}", s.name);
            }
        }
    }
    server.stop(false).await;
}
